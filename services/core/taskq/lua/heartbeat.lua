#!lua flags=allow-oom
-- heartbeat.lua: renew the leases of every job one worker holds in one queue, in one call.
--
-- A lease is renewed only with the current fencing token: once the reaper has taken a job back (or
-- another worker holds it), the old holder is told so and must stop treating the job as its own.
-- allow-oom: a Redis at maxmemory must not take running jobs' leases away (it only moves a score).
--
-- KEYS[1] active
-- ARGV[1] job key prefix   ARGV[2] lease ms   ARGV[3..] pairs of (job id, token)
-- Returns: one code per pair: 1 renewed, 3 renewed and cancellation requested, -2 lease lost

--@include _lib.lua

local active = KEYS[1]

local job_prefix = ARGV[1]
local lease_ms = tonumber(ARGV[2])
local FIRST_PAIR = 3

local deadline = fmt(now_ms() + lease_ms)
local out = {}
for i = FIRST_PAIR, #ARGV, 2 do
  local id = ARGV[i]
  local cur = redis.call('HMGET', job_prefix .. id, 'token', 'cancel')
  if cur[1] == ARGV[i + 1] then
    redis.call('ZADD', active, 'XX', deadline, id)
    if cur[2] then out[#out + 1] = 3 else out[#out + 1] = 1 end
  else
    out[#out + 1] = -2
  end
end
return out
