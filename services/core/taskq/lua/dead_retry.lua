#!lua
-- dead_retry.lua: re-drive a dead-lettered job: back to pending with a fresh attempt budget.
--
-- KEYS[1] dead   KEYS[2] pending   KEYS[3] marker   KEYS[4] job hash   KEYS[5] stats
-- ARGV[1] job id
-- Returns: 1 re-queued, -1 not in the dead-letter set (or its hash expired)

--@include _lib.lua

local id = ARGV[1]
if redis.call('ZREM', KEYS[1], id) == 0 then return -1 end
if redis.call('EXISTS', KEYS[4]) == 0 then return -1 end
redis.call('PERSIST', KEYS[4])
redis.call('HDEL', KEYS[4], 'error', 'reason', 'finished_at', 'started_at', 'worker', 'result', 'progress')
redis.call('HSET', KEYS[4], 'status', 'queued', 'attempts', 0)
redis.call('ZADD', KEYS[2], pending_score(redis.call('HGET', KEYS[4], 'priority'), now_ms()), id)
redis.call('ZADD', KEYS[3], 0, 'm')
redis.call('HINCRBY', KEYS[5], 'redriven', 1)
return 1
