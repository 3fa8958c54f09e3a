-- _lib.lua: the basics every other helper builds on. scripts.py inlines a file where a script says
-- "--@include <file>" on a line of its own; a script includes this one first, then the helper files
-- it uses (each says which it needs first): _events.lua (a job's state changes as stream entries),
-- _outcomes.lua (how a job leaves a worker or the queue), _promote.lua (scheduled to pending),
-- _claim.lua (taking jobs under a lease).
--
-- Job hash fields: payload (JSON, immutable), status, priority, attempts (executions started),
-- scheduled_at / started_at / finished_at (ms), worker, token (current fencing token, only while
-- running), result (JSON), error (JSON {type, message}), reason (dead-letter reason), progress (JSON),
-- cancel ("1" when cancellation was requested while running).
--
-- Numbers go to Redis through fmt(): Lua numbers are doubles and tostring() would print large ones
-- in exponent form, which ZADD would round.

-- Shared with Python (taskq/constants.py): scripts.py writes each as a local with its value.
--@const MAX_PRIORITY
--@const DEFAULT_PRIORITY
--@const BAND

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

-- Pending score: priority band first (the most urgent sorts first), then ms. Ties sort by member
-- (UUIDv7). The same formula as queue.py's pending_score, over the same constants.
local function pending_score(priority, ms)
  return fmt((MAX_PRIORITY - (tonumber(priority) or DEFAULT_PRIORITY)) * BAND + ms)
end

-- Make a job ready to run: queued, in pending within its priority band at ms.
local function make_ready(pending, jk, id, priority, ms)
  redis.call('HSET', jk, 'status', 'queued')
  redis.call('ZADD', pending, pending_score(priority, ms), id)
end

-- Wake one idle worker: they block on the marker (BZPOPMIN), a set of at most one member. The one
-- woken re-arms it while work is left (claim_into), so the wake-up passes along.
local function wake(marker)
  redis.call('ZADD', marker, 0, 'm')
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
