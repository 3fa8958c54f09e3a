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

local function count(acc, kind, task, ms)
  if ms < 0 then ms = 0 end  -- the producer's clock (created_at) ahead of Redis's
  local base = kind .. ':' .. task .. ':'
  local b = base .. bucket_of(ms)
  acc[b] = (acc[b] or 0) + 1
  acc[base .. 'sum'] = (acc[base .. 'sum'] or 0) + ms
end

-- One HINCRBY per distinct field: a batch of one task's jobs costs a few calls, not a few per job.
local function flush_counts(job_prefix, acc)
  local key = hist_key(job_prefix)
  for field, n in pairs(acc) do redis.call('HINCRBY', key, field, fmt(n)) end
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
    -- run_at is the payload's last field when present; created_at the last top-level one before it
    -- (',"created_at":' cannot occur inside a JSON string, and args come before it).
    due = due or tonumber(string.match(payload, ',"run_at":(%d+)}$'))
      or tonumber(string.match(payload, '.*,"created_at":(%d+)')) or now
    count(acc, 'w', task_of(payload), now - due)
  end
  flush_counts(job_prefix, acc)
end

-- Run time of the executions of ids that just ended (succeeded, cancelled or failed): from the
-- claim's started_at to now.
local function observe_runs(job_prefix, ids, now)
  local acc = {}
  for _, id in ipairs(ids) do
    local cur = redis.call('HMGET', job_prefix .. id, 'started_at', 'payload')
    if cur[1] then count(acc, 'r', task_of(cur[2] or ''), now - tonumber(cur[1])) end
  end
  flush_counts(job_prefix, acc)
end
