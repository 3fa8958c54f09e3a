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
-- KEYS[7] claim record of this nonce
-- ARGV[1] job key prefix   ARGV[2] result TTL ms   ARGV[3] events channel
-- ARGV[4] worker id   ARGV[5] lease ms   ARGV[6] jobs to claim next (0: none)   ARGV[7] number of acks
-- ARGV[8] claim nonce   ARGV[9..] per ack: id, token, outcome ('s' succeeded / 'c' cancelled), result JSON
-- Returns: {code per ack (1 ok, -2 stale token)..., next_due_ms, id, token, attempts, payload, ...}

--@include _lib.lua

local active, stats = KEYS[1], KEYS[2]
local prefix, ttl, channel = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local finished = fmt(now)
local out = {}
local succeeded, cancelled, stale = 0, 0, 0
local n = tonumber(ARGV[7])
local done = {}
local events = {}
for i = 0, n - 1 do
  local a = 9 + 4 * i
  local id, token = ARGV[a], ARGV[a + 1]
  local jk = prefix .. id
  local cur = redis.call('HMGET', jk, 'token', 'cancel')
  if cur[1] == token then
    local status = 'succeeded'
    if ARGV[a + 2] == 'c' then status = 'cancelled' end
    -- An empty token: nobody holds the job any more, so a repeated ack is refused as stale.
    redis.call('HSET', jk, 'status', status, 'result', ARGV[a + 3], 'finished_at', finished, 'token', '')
    if cur[2] then redis.call('HDEL', jk, 'cancel') end
    redis.call('PEXPIRE', jk, ttl)
    events[#events + 1] = id .. ' ' .. status
    done[#done + 1] = id
    if status == 'succeeded' then succeeded = succeeded + 1 else cancelled = cancelled + 1 end
    out[#out + 1] = 1
  else
    stale = stale + 1
    out[#out + 1] = -2
  end
end
bulk('ZREM', active, done)
-- One message for the whole batch, a line per job: waiters are woken without a PUBLISH per job.
if #events > 0 then redis.call('PUBLISH', channel, table.concat(events, '\n')) end
if succeeded > 0 then
  redis.call('HINCRBY', stats, 'succeeded', succeeded)
  redis.call('HINCRBY', stats, 'processed', succeeded)
end
if cancelled > 0 then redis.call('HINCRBY', stats, 'cancelled', cancelled) end
if stale > 0 then redis.call('HINCRBY', stats, 'stale_acks', stale) end

local want = tonumber(ARGV[6])
local due_at = #out + 1
out[due_at] = -1
if want > 0 then
  local lease_ms = tonumber(ARGV[5])
  out[due_at] = promote_and_next_due(KEYS[4], KEYS[3], KEYS[5], prefix, now, 1000)
  if not replay_claim(out, KEYS[7], active, prefix, lease_ms, now) then
    claim_into(out, KEYS[3], active, KEYS[5], KEYS[6], KEYS[7], ARGV[8], prefix, ARGV[4], lease_ms, want, now)
  end
end
return out
