#!lua
-- dead_retry.lua: re-drive a dead-lettered job: back to pending with a fresh attempt budget.
--
-- KEYS[1] dead   KEYS[2] pending   KEYS[3] marker   KEYS[4] job hash   KEYS[5] stats
-- ARGV[1] job id
-- Returns: 1 re-queued, -1 not in the dead-letter set (or its hash expired)

--@include _lib.lua

local dead = KEYS[1]
local pending = KEYS[2]
local marker = KEYS[3]
local job = KEYS[4]
local stats = KEYS[5]

local id = ARGV[1]

if redis.call('ZREM', dead, id) == 0 then return -1 end
if redis.call('EXISTS', job) == 0 then return -1 end
redis.call('PERSIST', job)
redis.call('HDEL', job, 'error', 'reason', 'finished_at', 'started_at', 'worker', 'result', 'progress')
redis.call('HSET', job, 'attempts', 0)
make_ready(pending, job, id, redis.call('HGET', job, 'priority'), now_ms())
wake(marker)
redis.call('HINCRBY', stats, 'redriven', 1)
return 1
