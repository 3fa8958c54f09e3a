#!lua flags=allow-oom
-- fail.lua: record a failed execution. Retry later (scheduled, with the caller's backoff delay) while
-- attempts are left and the error is retryable; otherwise dead-letter the job with the reason.
--
-- KEYS[1] active   KEYS[2] scheduled   KEYS[3] dead   KEYS[4] stats   KEYS[5] marker
-- ARGV[1] job key prefix   ARGV[2] job id   ARGV[3] token   ARGV[4] error JSON {type, message}
-- ARGV[5] retryable '1' / '0'   ARGV[6] retry delay ms   ARGV[7] dead-letter reason
-- ARGV[8] dead TTL ms   ARGV[9] events channel   ARGV[10] result TTL ms
-- A job whose cancellation was requested is cancelled instead of retried.
-- Returns: {1, 'scheduled' | 'failed' | 'cancelled'} or {-2, ''} when the token is stale

--@include _lib.lua

local id = ARGV[2]
local jk = ARGV[1] .. id
local cur = redis.call('HMGET', jk, 'token', 'attempts', 'payload', 'cancel')
if cur[1] ~= ARGV[3] then
  redis.call('HINCRBY', KEYS[4], 'stale_acks', 1)
  return {-2, ''}
end
local now = now_ms()
local attempts = tonumber(cur[2]) or 0
redis.call('ZREM', KEYS[1], id)
redis.call('HINCRBY', KEYS[4], 'processed', 1)
redis.call('HINCRBY', KEYS[4], 'failed', 1)
local retry = ARGV[5] == '1' and attempts < max_attempts_of(decode_payload(cur[3]))
if retry and cur[4] then
  -- Cancellation was requested: never start another attempt.
  redis.call('HSET', jk, 'status', 'cancelled', 'error', ARGV[4], 'finished_at', fmt(now))
  redis.call('HDEL', jk, 'token', 'cancel')
  redis.call('PEXPIRE', jk, ARGV[10])
  redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
  redis.call('PUBLISH', ARGV[9], id .. ' cancelled')
  return {1, 'cancelled'}
end
if retry then
  local due = fmt(now + tonumber(ARGV[6]))
  redis.call('HSET', jk, 'status', 'scheduled', 'error', ARGV[4], 'scheduled_at', due)
  redis.call('HDEL', jk, 'token', 'cancel')
  redis.call('ZADD', KEYS[2], due, id)
  redis.call('HINCRBY', KEYS[4], 'retried', 1)
  -- Wake a worker so its wait is bounded by this due time.
  redis.call('ZADD', KEYS[5], 0, 'm')
  return {1, 'scheduled'}
end
dead_letter(KEYS[3], KEYS[4], ARGV[9], jk, id, ARGV[4], ARGV[7], now, ARGV[8])
return {1, 'failed'}
