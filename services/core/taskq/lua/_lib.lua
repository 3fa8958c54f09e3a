-- _lib.lua: helpers inlined (by scripts.py) into every script that says "--@include _lib.lua".
--
-- Job hash fields: payload (JSON, immutable), status, priority, attempts (executions started),
-- scheduled_at / started_at / finished_at (ms), worker, token (current fencing token, only while
-- running), result (JSON), error (JSON {type, message}), reason (dead-letter reason), progress (JSON),
-- cancel ("1" when cancellation was requested while running).
--
-- Numbers go to Redis through fmt(): Lua numbers are doubles and tostring() would print large ones
-- in exponent form, which ZADD would round.

local function fmt(n)
  return string.format('%.0f', n)
end

-- One command over many arguments (ZADD key s1 m1 s2 m2 ..., ZREM key m1 m2 ...), in slices that
-- stay within Lua's C stack limit for unpack().
local function bulk(command, key, args)
  local step = 4000
  for i = 1, #args, step do
    redis.call(command, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end

-- Server time in ms: leases and due times follow one clock (Redis), never the callers' clocks.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Pending score: priority band first (9 most urgent sorts first), then ms. 2^42 ms is ~139 years,
-- and 9 * 2^42 + 2^42 stays below 2^53, so scores are exact doubles. Ties sort by member (UUIDv7).
local BAND = 4398046511104
local function pending_score(priority, ms)
  return fmt((9 - (tonumber(priority) or 5)) * BAND + ms)
end

-- The immutable payload, decoded; nil when it is not a JSON object (bad message).
local function decode_payload(raw)
  if not raw then return nil end
  local ok, doc = pcall(cjson.decode, raw)
  if ok and type(doc) == 'table' then return doc end
  return nil
end

local function max_attempts_of(doc)
  local n = doc and tonumber(doc['max_attempts'])
  if n and n >= 1 then return n end
  return 1
end

-- Move a job to the dead-letter set for good. The job hash expires after dead_ttl_ms.
local function dead_letter(dead, stats, channel, jk, id, err, reason, now, dead_ttl_ms)
  redis.call('HSET', jk, 'status', 'failed', 'error', err, 'reason', reason, 'finished_at', fmt(now))
  redis.call('HDEL', jk, 'token', 'cancel')
  redis.call('ZADD', dead, fmt(now), id)
  redis.call('PEXPIRE', jk, dead_ttl_ms)
  redis.call('HINCRBY', stats, 'dead', 1)
  redis.call('PUBLISH', channel, id .. ' failed')
end

-- Move due scheduled jobs (delayed, or backing off) to pending. Returns how many moved.
local function promote_due(scheduled, pending, marker, job_prefix, now, limit)
  local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', fmt(now), 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', scheduled, id)
    local jk = job_prefix .. id
    local priority = redis.call('HGET', jk, 'priority')
    if priority then
      redis.call('HSET', jk, 'status', 'queued')
      redis.call('ZADD', pending, pending_score(priority, now), id)
    end
  end
  if #due > 0 then redis.call('ZADD', marker, 0, 'm') end
  return #due
end

-- ms until the earliest scheduled job is due (0 when overdue), or -1 when none is scheduled.
local function next_due_in(scheduled, now)
  local first = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  local wait = tonumber(first[2]) - now
  if wait < 0 then return 0 end
  return wait
end

-- Promote due scheduled jobs; returns ms until the next one is due (0 when overdue, -1 when none is
-- scheduled). It reads the earliest entry first: in the common case (nothing scheduled, or nothing
-- due yet) that one read is all it costs.
local function promote_and_next_due(scheduled, pending, marker, job_prefix, now, limit)
  local first = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  local wait = tonumber(first[2]) - now
  if wait > 0 then return wait end
  promote_due(scheduled, pending, marker, job_prefix, now, limit)
  return next_due_in(scheduled, now)
end

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
  bulk('ZADD', active, leases)
  -- More work left: keep the marker set so another idle worker wakes up and shares it. The marker
  -- is never cleared here: only a blocking pop consumes it. It may also say "a delayed job was
  -- added, recompute your wait"; clearing it on an empty queue lost that news for a worker about to
  -- block (it then slept its whole idle wait past the job's due time).
  -- (A pop that got fewer than it asked for emptied the queue: no need to look.)
  if #popped / 2 == n and redis.call('ZCARD', pending) > 0 then
    redis.call('ZADD', marker, 0, 'm')
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
