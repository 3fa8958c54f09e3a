#!lua
-- progress.lua: store a running job's progress, only for the worker holding the current lease.
--
-- KEYS[1] job hash
-- ARGV[1] token   ARGV[2] progress JSON {percent, message}
-- Returns: 1 stored, -2 stale token

if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return -2 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
