#!lua
-- dead_retry.lua: re-drive a dead-lettered job: back to pending with a fresh attempt budget.
--
-- KEYS[1] dead   KEYS[2] pending   KEYS[3] marker   KEYS[4] job hash   KEYS[5] stats
-- KEYS[6] event stream
-- ARGV[1] job id   ARGV[2] event stream max length
-- Returns: 1 re-queued, -1 not in the dead-letter set (or its hash expired)

--@include _lib.lua
--@include _events.lua

local dead = KEYS[1]
local pending = KEYS[2]
local marker = KEYS[3]
local job = KEYS[4]
local stats = KEYS[5]
local event_stream = KEYS[6]

local id = ARGV[1]
events_to(event_stream, ARGV[2])

if redis.call('ZREM', dead, id) == 0 then return -1 end
if redis.call('EXISTS', job) == 0 then return -1 end
redis.call('PERSIST', job)
redis.call('HDEL', job, 'error', 'reason', 'finished_at', 'started_at', 'worker', 'result', 'progress')
redis.call('HSET', job, 'attempts', 0)
make_ready(pending, job, id, redis.call('HGET', job, 'priority'), now_ms())
wake(marker)
redis.call('HINCRBY', stats, 'redriven', 1)
emit_event(id, 'redriven', 'queued', 0)
flush_events()
return 1
