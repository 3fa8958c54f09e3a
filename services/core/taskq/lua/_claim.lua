-- _claim.lua: taking pending jobs under a lease, recoverably. Needs _lib.lua, _events.lua, _promote.lua
-- and _histogram.lua.

-- Due scheduled jobs promoted on the way to a claim, at most (the maintenance timer does the rest).
local PROMOTE_ON_CLAIM = 1000

-- Claim up to n pending jobs: each gets a lease deadline in the active set and a fresh fencing
-- token. Appends {id, token, attempts, payload} per job to out. Ids whose hash is gone (expired or
-- deleted by hand) are dropped: there is nothing left to run. Calls per job are kept to two (HMGET,
-- HSET): one token range for the batch, one ZADD for the batch, one SET for the claim record.
--
-- A token is the counter's next value followed by the caller's nonce (20 random digits, new for
-- every claim call). The counter alone repeats after Redis loses its last writes (AOF everysec and a
-- crash lose up to a second, the counter with them): the lost holder's heartbeat and late ack would
-- then pass as the new holder's. Only equality is ever compared, so the suffix is all it takes.
--
-- The claim record (KEYS: record, a lease's TTL) names the jobs this call took, under its nonce: a
-- caller that lost the reply asks again with the same nonce and gets them (replay_claim).
local function claim_into(out, pending, active, marker, token_key, record, nonce, job_prefix, worker,
                          lease_ms, n, now)
  if n <= 0 then return end
  local popped = redis.call('ZPOPMIN', pending, n)
  if #popped == 0 then return end
  local counter = redis.call('INCRBY', token_key, #popped / 2) - #popped / 2
  local deadline = fmt(now + lease_ms)
  local started = fmt(now)
  local leases = {}
  local taken = {}
  for i = 1, #popped, 2 do
    local id = popped[i]
    local jk = job_prefix .. id
    local cur = redis.call('HMGET', jk, 'payload', 'attempts', 'status')
    counter = counter + 1
    if cur[1] or cur[3] then
      local token = fmt(counter) .. nonce
      local attempts = (tonumber(cur[2]) or 0) + 1
      redis.call('HSET', jk, 'status', 'running', 'attempts', attempts, 'token', token, 'worker', worker,
        'started_at', started)
      emit_event(id, 'running', 'running', attempts)
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
      taken[#taken + 1] = id .. ' ' .. token
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = attempts
      -- A hash without a payload is a bad message: hand it over empty so the worker dead-letters it.
      out[#out + 1] = cur[1] or ''
    end
  end
  if #taken > 0 then redis.call('SET', record, table.concat(taken, ' '), 'PX', lease_ms) end
  observe_claimed(job_prefix, out, #out - 4 * #taken + 1, now)
  bulk('ZADD', active, leases)
  -- More work left: keep the marker set so another idle worker wakes up and shares it. The marker
  -- is never cleared here: only a blocking pop consumes it. It may also say "a delayed job was
  -- added, recompute your wait"; clearing it on an empty queue lost that news for a worker about to
  -- block (it then slept its whole idle wait past the job's due time).
  -- (A pop that got fewer than it asked for emptied the queue: no need to look.)
  if #popped / 2 == n and redis.call('ZCARD', pending) > 0 then
    wake(marker)
  end
end

-- A claim asked again with the nonce of a call whose reply was lost (a read timeout, a dropped
-- connection, a blocked pop's deadline): append the jobs that call took and still holds under its
-- tokens, with their leases renewed from now (the caller is alive and has them only now), in
-- claim_into's format. Returns false when the nonce took nothing (or its record expired with the
-- lease): the caller claims afresh. A job taken back since (reaped, re-claimed) is left out.
local function replay_claim(out, record, active, job_prefix, lease_ms, now)
  local taken = redis.call('GET', record)
  if not taken then return false end
  local deadline = fmt(now + lease_ms)
  for id, token in string.gmatch(taken, '(%S+) (%S+)') do
    local cur = redis.call('HMGET', job_prefix .. id, 'token', 'attempts', 'payload')
    if cur[1] == token then
      redis.call('ZADD', active, 'XX', deadline, id)
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = tonumber(cur[2])
      out[#out + 1] = cur[3] or ''
    end
  end
  return true
end

-- Promote what is due, then claim up to n jobs for worker (or, when this nonce's claim ran already
-- and its reply was lost, hand back what it took). Appends next_due_ms, then the jobs in
-- claim_into's format, to out.
--
-- A paused queue (its paused key exists) hands out nothing new. The check is here, in the one
-- function every claim path runs (claim.lua, complete.lua's fused claim, the claim pipelined behind
-- the waiter's blocking pop), so no worker can race a pause. Replays still answer: those jobs were
-- taken before. No marker is re-armed, so idle workers block instead of spinning; resume wakes one.
local function claim_jobs(out, pending, scheduled, active, marker, token, claim, job_prefix, worker,
                          lease_ms, n, nonce, now, paused)
  out[#out + 1] = promote_and_next_due(scheduled, pending, marker, job_prefix, now, PROMOTE_ON_CLAIM)
  if not replay_claim(out, claim, active, job_prefix, lease_ms, now)
      and redis.call('EXISTS', paused) == 0 then
    claim_into(out, pending, active, marker, token, claim, nonce, job_prefix, worker, lease_ms, n, now)
  end
end
