#!lua flags=allow-oom
-- reap.lua: take back jobs whose lease expired (their worker died or was cut off). With attempts
-- left a job goes back to the head of its priority band; without, it is dead-lettered with reason
-- worker_lost; a job whose cancellation was requested is cancelled. The token is dropped, so the old holder's late ack is refused. Also trims dead-letter
-- entries older than the dead TTL (their job hashes expire on their own).
--
-- The fleet runs this at most once per interval: with lock_ms > 0 only the caller that sets the
-- maintenance lock (SET NX PX) does the work; the others return at once.
--
-- KEYS[1] active   KEYS[2] pending   KEYS[3] dead   KEYS[4] stats   KEYS[5] marker   KEYS[6] lock
-- ARGV[1] job key prefix   ARGV[2] max jobs   ARGV[3] dead TTL ms   ARGV[4] lock ms (0: no lock)
-- ARGV[5] lock owner   ARGV[6] events channel   ARGV[7] error JSON recorded for worker_lost
-- ARGV[8] result TTL ms (a job whose cancellation was requested is cancelled, not re-queued)
-- Returns: {ran (1, or 0 when another caller holds the lock), requeued, dead-lettered}

--@include _lib.lua

local lock_ms = tonumber(ARGV[4])
if lock_ms > 0 and not redis.call('SET', KEYS[6], ARGV[5], 'NX', 'PX', lock_ms) then
  return {0, 0, 0}
end
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(now), 'LIMIT', 0, tonumber(ARGV[2]))
local requeued, died = 0, 0
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  local jk = ARGV[1] .. id
  local cur = redis.call('HMGET', jk, 'attempts', 'priority', 'payload', 'status', 'cancel')
  if cur[4] == 'running' then
    redis.call('HDEL', jk, 'token')
    redis.call('HINCRBY', KEYS[4], 'processed', 1)
    redis.call('HINCRBY', KEYS[4], 'failed', 1)
    redis.call('HINCRBY', KEYS[4], 'lost', 1)
    local doc = decode_payload(cur[3])
    if cur[5] then
      -- Cancellation was requested and the holder is gone: honour it instead of running it again.
      redis.call('HSET', jk, 'status', 'cancelled', 'finished_at', fmt(now))
      redis.call('HDEL', jk, 'cancel')
      redis.call('PEXPIRE', jk, ARGV[8])
      redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
      redis.call('PUBLISH', ARGV[6], id .. ' cancelled')
    elseif (tonumber(cur[1]) or 0) >= max_attempts_of(doc) then
      dead_letter(KEYS[3], KEYS[4], ARGV[6], jk, id, ARGV[7], 'worker_lost', now, ARGV[3])
      died = died + 1
    else
      local created = (doc and tonumber(doc['created_at'])) or now
      redis.call('HSET', jk, 'status', 'queued')
      redis.call('ZADD', KEYS[2], pending_score(cur[2], created), id)
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then redis.call('ZADD', KEYS[5], 0, 'm') end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', fmt(now - tonumber(ARGV[3])))
return {1, requeued, died}
