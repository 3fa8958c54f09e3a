#!lua
-- remove_queue.lua: delete the keys of a queue that holds no job (pending, scheduled, running or
-- dead): its counters, token counter, marker, pause and maintenance lock. Removing it from the
-- fleet-wide registry is the caller's (that key is outside this queue's slot). Finished jobs' hashes
-- and idempotency records are left to expire on their TTLs; claim records expire with their leases.
--
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] active   KEYS[4] dead   KEYS[5] stats   KEYS[6] token
-- KEYS[7] marker   KEYS[8] paused   KEYS[9] maintenance lock
-- Returns: {1} removed, or {-3, pending, scheduled, running, dead} when it holds jobs (nothing deleted)

local pending = KEYS[1]
local scheduled = KEYS[2]
local active = KEYS[3]
local dead = KEYS[4]
local stats = KEYS[5]
local token = KEYS[6]
local marker = KEYS[7]
local paused = KEYS[8]
local maintenance_lock = KEYS[9]

local held = {
  redis.call('ZCARD', pending), redis.call('ZCARD', scheduled), redis.call('ZCARD', active),
  redis.call('ZCARD', dead),
}
if held[1] + held[2] + held[3] + held[4] > 0 then
  return {-3, held[1], held[2], held[3], held[4]}
end
redis.call('DEL', stats, token, marker, paused, maintenance_lock)
return {1}
