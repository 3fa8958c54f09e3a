#!lua
-- enqueue.lua: add one or more jobs to one queue, atomically (all of them or none).
--
-- Idempotency: an item whose idempotency key already names a job creates nothing and returns that
-- job. When its fingerprint (a digest of the request) differs from the one the key was first used
-- with, the whole call is refused (-5) and nothing is written; fingerprint '*' matches any.
-- Admission control: when max_depth > 0 and pending + scheduled + new jobs would exceed it, nothing
-- is written. With the #!lua shebang Redis refuses the whole script up front when it is out of
-- memory (noeviction), so a full Redis never leaves a half-written job.
--
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] marker   KEYS[4] stats   KEYS[5] event stream
-- KEYS[5 + 2i - 1]  job hash of item i      KEYS[5 + 2i]  idempotency key of item i (unused if no fp)
-- ARGV[1] idempotency TTL ms (a delayed item's key lives its delay longer)   ARGV[2] max depth (0: unlimited)
-- ARGV[3] event stream max length
-- ARGV[4 + 6(i-1) ..] per item: id, payload, priority, delay ms, fingerprint ('' when no key),
--   created_at ms (the payload's, producer clock: its FIFO place in the band, as the plain MULTI scores)
-- Returns: {code, enqueued_total_after} then per item {code, id, fingerprint}
--   code 1 created, 2 existing (idempotent repeat); or {-4, depth} queue full, {-5, item, job id} conflict

--@include _lib.lua
--@include _events.lua

local pending = KEYS[1]
local scheduled = KEYS[2]
local marker = KEYS[3]
local stats = KEYS[4]
local event_stream = KEYS[5]
-- Then two keys per item i (1-based): its job hash and its idempotency key.
local function job_of(i) return KEYS[4 + 2 * i] end
local function idempotency_of(i) return KEYS[5 + 2 * i] end

local idem_ttl = tonumber(ARGV[1])
local max_depth = tonumber(ARGV[2])
events_to(event_stream, ARGV[3])
local FIRST_ITEM = 4  -- the items start here, each ITEM_ARGS long (see the header)
local ITEM_ARGS = 6

local n = (#KEYS - 5) / 2

local out = {}
local new = 0
local seen = {}  -- idempotency keys used earlier in this same batch
for i = 1, n do
  local a = FIRST_ITEM + ITEM_ARGS * (i - 1)
  local fp = ARGV[a + 4]
  local ik = idempotency_of(i)
  local existing = nil
  if fp ~= '' then existing = seen[ik] or redis.call('GET', ik) end
  if existing then
    local sep = string.find(existing, ' ', 1, true)
    local first_fp = string.sub(existing, sep + 1)
    -- Same key, different request: refuse the whole call before anything is written.
    if fp ~= '*' and first_fp ~= fp then return {-5, i, string.sub(existing, 1, sep - 1)} end
    out[#out + 1] = 2
    out[#out + 1] = string.sub(existing, 1, sep - 1)
    out[#out + 1] = first_fp
  else
    new = new + 1
    if fp ~= '' then seen[ik] = ARGV[a] .. ' ' .. fp end
    out[#out + 1] = 1
    out[#out + 1] = ARGV[a]
    out[#out + 1] = fp
  end
end

if max_depth > 0 and new > 0 then
  local depth = redis.call('ZCARD', pending) + redis.call('ZCARD', scheduled)
  if depth + new > max_depth then return {-4, depth} end
end

local now = now_ms()
local ready, later = {}, {}
for i = 1, n do
  if out[3 * i - 2] == 1 then
    local a = FIRST_ITEM + ITEM_ARGS * (i - 1)
    local id, payload, priority, delay, fp = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4]
    local created = tonumber(ARGV[a + 5])
    local jk = job_of(i)
    if delay > 0 then
      local due = fmt(now + delay)
      redis.call('HSET', jk, 'payload', payload, 'status', 'scheduled', 'priority', priority, 'scheduled_at', due)
      later[#later + 1] = due
      later[#later + 1] = id
      emit_event(id, 'scheduled', 'scheduled', 0, {'due', due})
    else
      redis.call('HSET', jk, 'payload', payload, 'status', 'queued', 'priority', priority)
      -- The FIFO place in the band is the job's created_at (producer clock), as the plain MULTI
      -- scores it: both encodings of an enqueue order jobs the same way. Due times stay on TIME.
      ready[#ready + 1] = pending_score(priority, created)
      ready[#ready + 1] = id
      emit_event(id, 'queued', 'queued', 0)
    end
    if fp ~= '' then
      -- A delayed job keeps its key until it is due plus the TTL: a retry while it waits finds it.
      redis.call('SET', idempotency_of(i), id .. ' ' .. fp, 'PX', idem_ttl + delay)
    end
  end
end
bulk('ZADD', pending, ready)
bulk('ZADD', scheduled, later)
local woke = new > 0
-- Wake one idle worker (it re-arms the marker for the next one while work is left). A delayed job
-- wakes one too, so a worker sleeping until a later due time recomputes its timeout.
if woke then wake(marker) end
local total = redis.call('HINCRBY', stats, 'enqueued', new)
table.insert(out, 1, total)
table.insert(out, 1, 1)
flush_events()
return out
