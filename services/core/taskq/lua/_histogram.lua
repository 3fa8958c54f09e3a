-- _histogram.lua: latency histograms per queue and task, counted by the scripts that start and end
-- executions, in the same call (no extra round trip), so every worker and producer adds to one count.
-- Needs _lib.lua.
--
-- One hash per queue (keys.py's QueueKeys.hist), fields '<kind>:<task>:<bucket>' and '<kind>:<task>:sum'
-- (ms), kind 'w' (wait: from due to claimed) or 'r' (run: claimed to finished). A bucket is the index
-- of the first bound of LATENCY_BUCKETS_MS the value is <= to (#bounds: above the last, +Inf); counts
-- are per bucket, not cumulative: the reader adds them up. A task name outside the task-name
-- alphabet is counted as '' and the reader folds every name the registry does not know into one.

--@const LATENCY_BUCKETS_MS

-- The queue's histogram hash, derived from the job prefix ('<p>:{q}:job:' -> '<p>:{q}:hist') rather
-- than passed in KEYS so the claim/complete/fail signatures stay as they are. It carries the queue's
-- hash tag: it is in the slot of the declared keys.
local function hist_key(job_prefix)
  return string.sub(job_prefix, 1, -5) .. 'hist'
end

local function bucket_of(ms)
  for i = 1, #LATENCY_BUCKETS_MS do
    if ms <= LATENCY_BUCKETS_MS[i] then return i - 1 end
  end
  return #LATENCY_BUCKETS_MS
end

-- The task of a payload written by models.py's JobPayload.to_json ({"v":..,"id":"..","task":"..",...}):
-- a match at the head, not a JSON decode of the whole payload (args can be large).
local function task_of(payload)
  return string.match(payload, '^{"v":%d+,"id":"[^"]*","task":"([%w_%.%-]+)"') or ''
end

-- acc: task -> {[bucket] = count, sum = ms}; field names are built once per task at flush, not per
-- job (each new Lua string is hashed and interned).
local function count(acc, task, ms)
  if ms < 0 then ms = 0 end  -- the producer's clock (created_at) ahead of Redis's
  local t = acc[task]
  if not t then
    t = {sum = 0}
    acc[task] = t
  end
  local b = bucket_of(ms)
  t[b] = (t[b] or 0) + 1
  t.sum = t.sum + ms
end

-- One HINCRBY per distinct field: a batch of one task's jobs costs a few calls, not a few per job.
local function flush_counts(job_prefix, kind, acc)
  local key = nil
  for task, t in pairs(acc) do
    key = key or hist_key(job_prefix)
    local base = kind .. ':' .. task .. ':'
    for b, n in pairs(t) do redis.call('HINCRBY', key, base .. b, fmt(n)) end
  end
end

-- When a first attempt became due: its run_at when delayed, else its created_at (payload fields, in
-- ms). Plain finds, no backtracking pattern. ',"created_at":' cannot occur inside a JSON string and
-- args come before it, so its last occurrence is the job's own; run_at, when present, follows it.
local function due_of(payload)
  local at, last = 1, nil
  while true do
    local _, j = string.find(payload, ',"created_at":', at, true)
    if not j then break end
    last, at = j, j + 1
  end
  if not last then return nil end
  local _, r = string.find(payload, ',"run_at":', last, true)
  return tonumber(string.match(payload, '^%d+', (r or last) + 1))
end

-- Wait of the jobs just claimed: out[first..] holds {id, token, attempts, payload} per job. A first
-- attempt became due when it was enqueued (payload created_at) or, delayed, at its run_at; a later
-- attempt (a retry) when its backoff ended (the hash's scheduled_at, written by fail.lua). A job
-- requeued after a lost lease keeps its last due time, so its wait includes the lost attempt.
local function observe_claimed(job_prefix, out, first, now)
  local acc = {}
  for i = first, #out, 4 do
    local payload = out[i + 3]
    local due = nil
    if out[i + 2] > 1 then due = tonumber(redis.call('HGET', job_prefix .. out[i], 'scheduled_at')) end
    due = due or due_of(payload) or now
    count(acc, task_of(payload), now - due)
  end
  flush_counts(job_prefix, 'w', acc)
end

-- One ended execution into acc: its claim's started_at and its payload, read by the caller's own HMGET
-- (complete.lua reads them with the token, one call per ack instead of two).
local function count_run(acc, started, payload, now)
  if started then count(acc, task_of(payload or ''), now - tonumber(started)) end
end

-- Run time of the executions of ids that just ended (succeeded, cancelled or failed): from the
-- claim's started_at to now.
local function observe_runs(job_prefix, ids, now)
  local acc = {}
  for _, id in ipairs(ids) do
    local cur = redis.call('HMGET', job_prefix .. id, 'started_at', 'payload')
    if cur[1] then count(acc, task_of(cur[2] or ''), now - tonumber(cur[1])) end
  end
  flush_counts(job_prefix, 'r', acc)
end
