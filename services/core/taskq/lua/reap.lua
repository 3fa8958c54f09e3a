#!lua flags=allow-oom
-- reap.lua: take back jobs whose lease expired (their worker died or was cut off). With attempts
-- left a job goes back to the head of its priority band; without, it is dead-lettered with reason
-- worker_lost; a job whose cancellation was requested is cancelled. The token is dropped, so the old
-- holder's late ack is refused. Also trims dead-letter entries older than the dead TTL (their job
-- hashes expire on their own).
--
-- The fleet runs this at most once per interval: with lock_ms > 0 only the caller that sets the
-- maintenance lock (SET NX PX) does the work; the others return at once.
--
-- KEYS[1] active   KEYS[2] pending   KEYS[3] dead   KEYS[4] stats   KEYS[5] marker   KEYS[6] lock
-- KEYS[7] event stream
-- ARGV[1] job key prefix   ARGV[2] max jobs   ARGV[3] dead TTL ms   ARGV[4] lock ms (0: no lock)
-- ARGV[5] lock owner   ARGV[6] events channel   ARGV[7] error JSON recorded for worker_lost
-- ARGV[8] result TTL ms (a job whose cancellation was requested is cancelled, not re-queued)
-- ARGV[9] event stream max length
-- Returns: {ran (1, or 0 when another caller holds the lock), requeued, dead-lettered}

--@include _lib.lua
--@include _events.lua
--@include _outcomes.lua

local active = KEYS[1]
local pending = KEYS[2]
local dead = KEYS[3]
local stats = KEYS[4]
local marker = KEYS[5]
local maintenance_lock = KEYS[6]
local event_stream = KEYS[7]

local job_prefix = ARGV[1]
local max_jobs = tonumber(ARGV[2])
local dead_ttl_ms = ARGV[3]
local lock_ms = tonumber(ARGV[4])
local lock_owner = ARGV[5]
local events = ARGV[6]
local lost_error = ARGV[7]
local result_ttl_ms = ARGV[8]
events_to(event_stream, ARGV[9])

if lock_ms > 0 and not redis.call('SET', maintenance_lock, lock_owner, 'NX', 'PX', lock_ms) then
  return {0, 0, 0}
end
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', active, '-inf', fmt(now), 'LIMIT', 0, max_jobs)
local requeued, died = 0, 0
for _, id in ipairs(expired) do
  redis.call('ZREM', active, id)
  local jk = job_prefix .. id
  local cur = redis.call('HMGET', jk, 'attempts', 'priority', 'payload', 'status', 'cancel')
  if cur[4] == 'running' then
    redis.call('HINCRBY', stats, 'processed', 1)
    redis.call('HINCRBY', stats, 'failed', 1)
    redis.call('HINCRBY', stats, 'lost', 1)
    local doc = decode_payload(cur[3])
    if cur[5] then
      -- Cancellation was requested and the holder is gone: honour it instead of running it again.
      mark_cancelled(stats, events, jk, id, now, result_ttl_ms)
    elseif (tonumber(cur[1]) or 0) >= max_attempts_of(doc) then
      dead_letter(dead, stats, events, jk, id, lost_error, 'worker_lost', now, dead_ttl_ms)
      died = died + 1
    else
      requeue_at_head(pending, jk, id, cur[2], doc, now, 'reaped')
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then wake(marker) end
redis.call('ZREMRANGEBYSCORE', dead, '-inf', fmt(now - tonumber(dead_ttl_ms)))
flush_events()
return {1, requeued, died}
