#!lua flags=allow-oom
-- release.lua: hand jobs back on graceful shutdown, without using up an attempt. They go to the head
-- of their priority band (scored by creation time), so they run before work enqueued after them.
-- A released job whose cancellation was requested is cancelled instead.
--
-- KEYS[1] active   KEYS[2] pending   KEYS[3] marker   KEYS[4] stats
-- ARGV[1] job key prefix   ARGV[2] result TTL ms   ARGV[3] events channel   ARGV[4..] pairs (id, token)
-- Returns: number of jobs handed back (or cancelled); pairs with a stale token are skipped

--@include _lib.lua

local now = now_ms()
local released = 0
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local jk = ARGV[1] .. id
  local cur = redis.call('HMGET', jk, 'token', 'cancel', 'priority', 'payload')
  if cur[1] == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HINCRBY', jk, 'attempts', -1)
    redis.call('HDEL', jk, 'token', 'cancel')
    if cur[2] then
      redis.call('HSET', jk, 'status', 'cancelled', 'finished_at', fmt(now))
      redis.call('PEXPIRE', jk, ARGV[2])
      redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
      redis.call('PUBLISH', ARGV[3], id .. ' cancelled')
    else
      local doc = decode_payload(cur[4])
      local created = (doc and tonumber(doc['created_at'])) or now
      redis.call('HSET', jk, 'status', 'queued')
      redis.call('ZADD', KEYS[2], pending_score(cur[3], created), id)
    end
    released = released + 1
  end
end
if released > 0 then redis.call('ZADD', KEYS[3], 0, 'm') end
return released
