#!lua
-- progress.lua: store a running job's progress, only for the worker holding the current lease.
--
-- KEYS[1] job hash
-- ARGV[1] token   ARGV[2] progress JSON {percent, message}
-- Returns: 1 stored, -2 stale token

local job = KEYS[1]

local held = ARGV[1]
local progress = ARGV[2]

if redis.call('HGET', job, 'token') ~= held then return -2 end
redis.call('HSET', job, 'progress', progress)
return 1
