#!lua
-- pause.lua: pause or resume a queue. While its paused key exists the claim scripts hand out no new
-- job (_claim.lua's claim_jobs checks it in every claim path); enqueues go on, running jobs finish.
-- The key has no TTL: a pause outlives every process, and Redis restarts as far as it persists.
--
-- Resuming wakes one idle worker (the marker): workers blocked on a paused queue do not poll, and the
-- one woken re-arms the marker while work is left (claim_into), so the wake-up passes along.
--
-- KEYS[1] paused   KEYS[2] marker
-- ARGV[1] '1' pause, '0' resume
-- Returns: 1 when the state changed, 0 when it was already so (both calls are idempotent)

--@include _lib.lua

local paused = KEYS[1]
local marker = KEYS[2]

if ARGV[1] == '1' then
  if redis.call('SET', paused, '1', 'NX') then return 1 end
  return 0
end
local was = redis.call('DEL', paused)
wake(marker)
return was
