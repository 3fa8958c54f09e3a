#!lua flags=allow-oom
-- fail.lua: record a failed execution. Retry later (scheduled, with the caller's backoff delay) while
-- attempts are left and the error is retryable; otherwise dead-letter the job with the reason.
--
-- KEYS[1] active   KEYS[2] scheduled   KEYS[3] dead   KEYS[4] stats   KEYS[5] marker
-- KEYS[6] event stream
-- ARGV[1] job key prefix   ARGV[2] job id   ARGV[3] token   ARGV[4] error JSON {type, message}
-- ARGV[5] retryable '1' / '0'   ARGV[6] retry delay ms   ARGV[7] dead-letter reason
-- ARGV[8] dead TTL ms   ARGV[9] events channel   ARGV[10] result TTL ms
-- ARGV[11] event stream max length
-- A job whose cancellation was requested is cancelled instead of retried.
-- Returns: {1, 'scheduled' | 'failed' | 'cancelled'} or {-2, ''} when the token is stale

--@include _lib.lua
--@include _events.lua
--@include _outcomes.lua
--@include _histogram.lua

local active = KEYS[1]
local scheduled = KEYS[2]
local dead = KEYS[3]
local stats = KEYS[4]
local marker = KEYS[5]
local event_stream = KEYS[6]

local job_prefix = ARGV[1]
local id = ARGV[2]
local held = ARGV[3]
local err = ARGV[4]
local retryable = ARGV[5] == '1'
local delay_ms = ARGV[6]
local reason = ARGV[7]
local dead_ttl_ms = ARGV[8]
local events = ARGV[9]
local result_ttl_ms = ARGV[10]
events_to(event_stream, ARGV[11])

local jk = job_prefix .. id
local cur = redis.call('HMGET', jk, 'token', 'attempts', 'payload', 'cancel')
if cur[1] ~= held then
  redis.call('HINCRBY', stats, 'stale_acks', 1)
  return {-2, ''}
end
local now = now_ms()
local attempts = tonumber(cur[2]) or 0
redis.call('ZREM', active, id)
observe_runs(job_prefix, {id}, now)
redis.call('HINCRBY', stats, 'processed', 1)
redis.call('HINCRBY', stats, 'failed', 1)
local retry = retryable and attempts < max_attempts_of(decode_payload(cur[3]))
if retry and cur[4] then
  -- Cancellation was requested: never start another attempt.
  mark_cancelled(stats, events, jk, id, now, result_ttl_ms, err)
  flush_events()
  return {1, 'cancelled'}
end
if retry then
  local due = fmt(now + tonumber(delay_ms))
  redis.call('HSET', jk, 'status', 'scheduled', 'error', err, 'scheduled_at', due)
  redis.call('HDEL', jk, 'token', 'cancel')
  redis.call('ZADD', scheduled, due, id)
  redis.call('HINCRBY', stats, 'retried', 1)
  emit_event(id, 'retry', 'scheduled', attempts, {'error', error_type(err), 'due', due})
  -- Wake a worker so its wait is bounded by this due time.
  wake(marker)
  flush_events()
  return {1, 'scheduled'}
end
dead_letter(dead, stats, events, jk, id, err, reason, now, dead_ttl_ms)
flush_events()
return {1, 'failed'}
