#!lua
-- claim.lua: promote due scheduled jobs, then claim up to N pending jobs under a lease.
--
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] active   KEYS[4] marker   KEYS[5] token counter
-- ARGV[1] job key prefix   ARGV[2] worker id   ARGV[3] lease ms   ARGV[4] max jobs to claim
-- Returns: {next_due_ms, id, token, attempts, payload, id, token, ...}
--   next_due_ms: ms until the next scheduled job is due, -1 when none (bounds the worker's wait)

--@include _lib.lua

local now = now_ms()
local out = {promote_and_next_due(KEYS[2], KEYS[1], KEYS[4], ARGV[1], now, 1000)}
claim_into(out, KEYS[1], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now)
return out
