#!lua
-- progress.lua: store a running job's progress, only for the worker holding the current lease.
--
-- KEYS[1] job hash   KEYS[2] event stream
-- ARGV[1] token   ARGV[2] progress JSON {percent, message}   ARGV[3] job id
-- ARGV[4] event stream max length
-- Returns: 1 stored, -2 stale token

--@include _lib.lua
--@include _events.lua

local job = KEYS[1]
local event_stream = KEYS[2]

local held = ARGV[1]
local progress = ARGV[2]
local id = ARGV[3]
events_to(event_stream, ARGV[4])

local cur = redis.call('HMGET', job, 'token', 'attempts')
if cur[1] ~= held then return -2 end
redis.call('HSET', job, 'progress', progress)
-- The event carries the numbers themselves (the stream is read without decoding JSON).
local doc = cjson.decode(progress)
local extras = {'percent', tostring(doc['percent'])}
if type(doc['message']) == 'string' then
  extras[#extras + 1] = 'message'
  extras[#extras + 1] = doc['message']
end
emit_event(id, 'progress', 'running', cur[2], extras)
return 1
