#!lua
-- cancel.lua: cancel a job. Queued or scheduled: cancelled at once. Running: a flag the worker sees
-- at its next heartbeat (it stops the handler and acks the job as cancelled).
--
-- KEYS[1] job hash   KEYS[2] pending   KEYS[3] scheduled   KEYS[4] stats   KEYS[5] event stream
-- ARGV[1] job id   ARGV[2] result TTL ms   ARGV[3] events channel   ARGV[4] event stream max length
-- Returns: {1, 'cancelled'} | {3, 'running'} (flag set) | {-1, ''} not found | {-3, status} finished

--@include _lib.lua
--@include _events.lua
--@include _outcomes.lua

local job = KEYS[1]
local pending = KEYS[2]
local scheduled = KEYS[3]
local stats = KEYS[4]
local event_stream = KEYS[5]

local id = ARGV[1]
local result_ttl_ms = ARGV[2]
local events = ARGV[3]
events_to(event_stream, ARGV[4])

local status = redis.call('HGET', job, 'status')
if not status then return {-1, ''} end
if status == 'running' then
  if redis.call('HSETNX', job, 'cancel', '1') == 1 then
    emit_event(id, 'cancel_requested', 'running', redis.call('HGET', job, 'attempts'))
  end
  flush_events()
  return {3, 'running'}
end
if status ~= 'queued' and status ~= 'scheduled' then return {-3, status} end
redis.call('ZREM', pending, id)
redis.call('ZREM', scheduled, id)
mark_cancelled(stats, events, job, id, now_ms(), result_ttl_ms)
flush_events()
return {1, 'cancelled'}
