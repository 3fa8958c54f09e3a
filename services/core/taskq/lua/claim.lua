#!lua
-- claim.lua: promote due scheduled jobs, then claim up to N pending jobs under a lease.
--
-- A claim is recoverable: when the same nonce comes again (the caller lost the reply of a claim
-- that ran), it hands back the jobs that call took instead of claiming more (see replay_claim).
--
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] active   KEYS[4] marker   KEYS[5] token counter
-- KEYS[6] claim record of this nonce   KEYS[7] paused (exists: claim nothing new)   KEYS[8] event stream
-- ARGV[1] job key prefix   ARGV[2] worker id   ARGV[3] lease ms   ARGV[4] max jobs to claim
-- ARGV[5] nonce (20 digits, new per call unless it is a retry)   ARGV[6] event stream max length
-- Returns: {next_due_ms, id, token, attempts, payload, id, token, ...}
--   next_due_ms: ms until the next scheduled job is due, -1 when none (bounds the worker's wait)

--@include _lib.lua
--@include _events.lua
--@include _promote.lua
--@include _histogram.lua
--@include _claim.lua

local pending = KEYS[1]
local scheduled = KEYS[2]
local active = KEYS[3]
local marker = KEYS[4]
local token = KEYS[5]
local claim = KEYS[6]
local paused = KEYS[7]
local event_stream = KEYS[8]

local job_prefix = ARGV[1]
local worker = ARGV[2]
local lease_ms = tonumber(ARGV[3])
local max_jobs = tonumber(ARGV[4])
local nonce = ARGV[5]
events_to(event_stream, ARGV[6])

local out = {}
claim_jobs(out, pending, scheduled, active, marker, token, claim, job_prefix, worker, lease_ms, max_jobs,
  nonce, now_ms(), paused)
flush_events()
return out
