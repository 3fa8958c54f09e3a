#!lua
-- dead_purge.lua: delete a dead-lettered job for good.
--
-- KEYS[1] dead   KEYS[2] job hash
-- ARGV[1] job id
-- Returns: 1 deleted, -1 not in the dead-letter set

local dead = KEYS[1]
local job = KEYS[2]

local id = ARGV[1]

if redis.call('ZREM', dead, id) == 0 then return -1 end
redis.call('DEL', job)
return 1
