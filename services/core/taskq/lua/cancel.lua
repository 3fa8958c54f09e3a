#!lua
-- cancel.lua: cancel a job. Queued or scheduled: cancelled at once. Running: a flag the worker sees
-- at its next heartbeat (it stops the handler and acks the job as cancelled).
--
-- KEYS[1] job hash   KEYS[2] pending   KEYS[3] scheduled   KEYS[4] stats
-- ARGV[1] job id   ARGV[2] result TTL ms   ARGV[3] events channel
-- Returns: {1, 'cancelled'} | {3, 'running'} (flag set) | {-1, ''} not found | {-3, status} finished

--@include _lib.lua

local jk, id = KEYS[1], ARGV[1]
local status = redis.call('HGET', jk, 'status')
if not status then return {-1, ''} end
if status == 'running' then
  redis.call('HSET', jk, 'cancel', '1')
  return {3, 'running'}
end
if status ~= 'queued' and status ~= 'scheduled' then return {-3, status} end
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('HSET', jk, 'status', 'cancelled', 'finished_at', fmt(now_ms()))
redis.call('PEXPIRE', jk, ARGV[2])
redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
redis.call('PUBLISH', ARGV[3], id .. ' cancelled')
return {1, 'cancelled'}
