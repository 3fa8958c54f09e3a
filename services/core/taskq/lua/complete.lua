#!lua flags=allow-oom
-- complete.lua: acknowledge finished jobs (succeeded, or stopped after a cancel request), then claim
-- the next batch in the same call, so a busy worker needs about one round trip per job (or less).
--
-- Fencing: an ack whose token is not the job's current token is refused and counted as stale (the
-- lease expired and the job was handed to someone else); it never overwrites anything.
--
-- The claim is recoverable as claim.lua's is: the same nonce again hands back what it took.
--
-- KEYS[1] active   KEYS[2] stats   KEYS[3] pending   KEYS[4] scheduled   KEYS[5] marker   KEYS[6] token
-- KEYS[7] claim record of this nonce   KEYS[8] paused (exists: ack, but claim nothing new)
-- KEYS[9] event stream
-- ARGV[1] job key prefix   ARGV[2] result TTL ms   ARGV[3] events channel
-- ARGV[4] worker id   ARGV[5] lease ms   ARGV[6] jobs to claim next (0: none)   ARGV[7] number of acks
-- ARGV[8] claim nonce   ARGV[9] event stream max length
-- ARGV[10..] per ack: id, token, outcome ('s' succeeded / 'c' cancelled), result JSON
-- Returns: {code per ack (1 ok, -2 stale token)..., next_due_ms, id, token, attempts, payload, ...}

--@include _lib.lua
--@include _events.lua
--@include _promote.lua
--@include _histogram.lua
--@include _claim.lua

local active = KEYS[1]
local stats = KEYS[2]
local pending = KEYS[3]
local scheduled = KEYS[4]
local marker = KEYS[5]
local token = KEYS[6]
local claim = KEYS[7]
local paused = KEYS[8]
local event_stream = KEYS[9]

local job_prefix = ARGV[1]
local result_ttl_ms = ARGV[2]
local events = ARGV[3]
local worker = ARGV[4]
local lease_ms = tonumber(ARGV[5])
local want = tonumber(ARGV[6])
local n_acks = tonumber(ARGV[7])
local nonce = ARGV[8]
events_to(event_stream, ARGV[9])
local FIRST_ACK = 10  -- each ack is 4 ARGV from here on

local now = now_ms()
local finished = fmt(now)
local out = {}
local succeeded, cancelled, stale = 0, 0, 0
local done = {}
local lines = {}
local runs = {}  -- run-time histogram counts of this batch (task -> buckets)
for i = 0, n_acks - 1 do
  local a = FIRST_ACK + 4 * i
  local id, held = ARGV[a], ARGV[a + 1]
  local jk = job_prefix .. id
  local cur = redis.call('HMGET', jk, 'token', 'cancel', 'attempts', 'started_at', 'payload')
  if cur[1] == held then
    count_run(runs, cur[4], cur[5], now)
    local status = 'succeeded'
    if ARGV[a + 2] == 'c' then status = 'cancelled' end
    -- An empty token: nobody holds the job any more, so a repeated ack is refused as stale.
    redis.call('HSET', jk, 'status', status, 'result', ARGV[a + 3], 'finished_at', finished, 'token', '')
    if cur[2] then redis.call('HDEL', jk, 'cancel') end
    redis.call('PEXPIRE', jk, result_ttl_ms)
    emit_event(id, status, status, cur[3])
    lines[#lines + 1] = id .. ' ' .. status
    done[#done + 1] = id
    if status == 'succeeded' then succeeded = succeeded + 1 else cancelled = cancelled + 1 end
    out[#out + 1] = 1
  else
    stale = stale + 1
    out[#out + 1] = -2
  end
end
bulk('ZREM', active, done)
flush_counts(job_prefix, 'r', runs)
-- One message for the whole batch, a line per job: waiters are woken without a PUBLISH per job.
if #lines > 0 then redis.call('PUBLISH', events, table.concat(lines, '\n')) end
if succeeded > 0 then
  redis.call('HINCRBY', stats, 'succeeded', succeeded)
  redis.call('HINCRBY', stats, 'processed', succeeded)
end
if cancelled > 0 then redis.call('HINCRBY', stats, 'cancelled', cancelled) end
if stale > 0 then redis.call('HINCRBY', stats, 'stale_acks', stale) end

if want > 0 then
  claim_jobs(out, pending, scheduled, active, marker, token, claim, job_prefix, worker, lease_ms, want,
    nonce, now, paused)
else
  out[#out + 1] = -1
end
flush_events()
return out
