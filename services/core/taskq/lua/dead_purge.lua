#!lua
-- dead_purge.lua: delete a dead-lettered job for good.
--
-- KEYS[1] dead   KEYS[2] job hash   KEYS[3] event stream
-- ARGV[1] job id   ARGV[2] event stream max length
-- Returns: 1 deleted, -1 not in the dead-letter set

--@include _lib.lua
--@include _events.lua

local dead = KEYS[1]
local job = KEYS[2]
local event_stream = KEYS[3]

local id = ARGV[1]
events_to(event_stream, ARGV[2])

if redis.call('ZREM', dead, id) == 0 then return -1 end
local attempts = redis.call('HGET', job, 'attempts')
redis.call('DEL', job)
emit_event(id, 'purged', 'purged', attempts)
flush_events()
return 1
