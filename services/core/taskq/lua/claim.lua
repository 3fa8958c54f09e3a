#!lua
-- claim.lua: promote due scheduled jobs, then claim up to N pending jobs under a lease.
--
-- A claim is recoverable: when the same nonce comes again (the caller lost the reply of a claim
-- that ran), it hands back the jobs that call took instead of claiming more (see replay_claim).
--
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] active   KEYS[4] marker   KEYS[5] token counter
-- KEYS[6] claim record of this nonce
-- ARGV[1] job key prefix   ARGV[2] worker id   ARGV[3] lease ms   ARGV[4] max jobs to claim
-- ARGV[5] nonce (20 digits, new per call unless it is a retry)
-- Returns: {next_due_ms, id, token, attempts, payload, id, token, ...}
--   next_due_ms: ms until the next scheduled job is due, -1 when none (bounds the worker's wait)

--@include _lib.lua

local now = now_ms()
local lease_ms = tonumber(ARGV[3])
local out = {promote_and_next_due(KEYS[2], KEYS[1], KEYS[4], ARGV[1], now, 1000)}
if not replay_claim(out, KEYS[6], KEYS[3], ARGV[1], lease_ms, now) then
  claim_into(out, KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[5], ARGV[1], ARGV[2], lease_ms,
    tonumber(ARGV[4]), now)
end
return out
