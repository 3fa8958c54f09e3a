-- _events.lua: every state change of a job, as an entry of its queue's event stream. Needs _lib.lua.
--
-- The stream (QueueKeys.event_stream) is capped (MAXLEN ~ N, N = EVENTS_MAX_LEN): the window
-- that GET /jobs/{id}/events and GET /events replay from. It lives in the queue's slot, so the entry
-- is written by the script that makes the change, in the same call (no extra round trip). Its entry
-- id ('<ms>-<seq>', Redis's clock) is the event's id and timestamp.
--
-- An entry: job, type, status, attempt, then optional extras (field, value ...): percent and message
-- (progress), error (the error's type), reason (dead-letter reason), due (ms, scheduled and retry).
-- The four common fields come first and always in this order: Redis then stores their names once per
-- stream node, not per entry (see the setting's description for the bytes an event costs).
--
-- A batch entry: type, status, then jobs ('<id> <attempt> <id> <attempt> ...'): a run of consecutive
-- events of one type and status without extras (a claim's 'running', an ack batch's 'succeeded', a
-- promotion's 'queued') is written as ONE entry when the run ends, not one XADD per job (an XADD is
-- ~3.4 us; the claim and the fused ack+claim wrote two per job). Readers (taskq.job_events) give each
-- job its own event back, in the entry's order, with the id '<entry id>:<index>'. A run of one is
-- written as a plain entry; a run of more than EVENTS_PER_ENTRY is written as several entries, so an
-- entry's size (and the memory of a stream capped in entries) stays bounded. Runs end at the first event of another type or with extras, so the
-- stream still holds every event in the order the script made them.
--
-- A script calls events_to(KEYS[...], ARGV[...]) once at its top, then emit_event() per change, and
-- flush_events() before it returns (every return after an emit_event: a run not flushed is lost).
-- The types: queued, scheduled, running, progress, retry, succeeded, failed, cancelled,
-- cancel_requested, released, reaped, redriven, purged (docs/events.md lists them with their statuses).

--@const EVENTS_PER_ENTRY

local event_stream, event_max_len, event_trimmed = nil, nil, false
-- The run being gathered: its type and status, and its jobs as id, attempt, id, attempt ...
local run_kind, run_status, run_jobs = nil, nil, {}

local function events_to(key, max_len)
  event_stream, event_max_len = key, max_len
end

-- The cap is applied once per script call, before its first entry (XTRIM MAXLEN ~), not on every
-- XADD: a MAXLEN on each entry cost ~1-3 us more per XADD (measured). The stream may so pass the
-- cap by one call's entries.
local function trim_events()
  if not event_trimmed then
    redis.call('XTRIM', event_stream, 'MAXLEN', '~', event_max_len)
    event_trimmed = true
  end
end

-- Write the run gathered so far (nothing when there is none).
local function flush_events()
  local n = #run_jobs / 2
  if n == 0 then return end
  trim_events()
  if n == 1 then
    redis.call('XADD', event_stream, '*', 'job', run_jobs[1], 'type', run_kind, 'status', run_status,
      'attempt', run_jobs[2])
  else
    redis.call('XADD', event_stream, '*', 'type', run_kind, 'status', run_status,
      'jobs', table.concat(run_jobs, ' '))
  end
  run_jobs = {}
end

-- One event. attempt is the job's attempts count after the change (0 before its first run). Without
-- extras it joins the current run (or ends it and starts one); with extras it is written at once,
-- after the run before it.
local function emit_event(id, kind, status, attempt, extras)
  attempt = tonumber(attempt) or 0
  if not extras then
    if kind ~= run_kind or status ~= run_status then
      flush_events()
      run_kind, run_status = kind, status
    end
    run_jobs[#run_jobs + 1] = id
    run_jobs[#run_jobs + 1] = attempt
    if #run_jobs >= 2 * EVENTS_PER_ENTRY then flush_events() end  -- an entry's size stays bounded
    return
  end
  flush_events()
  trim_events()
  local args = {'XADD', event_stream, '*', 'job', id, 'type', kind, 'status', status, 'attempt', attempt}
  for _, v in ipairs(extras) do args[#args + 1] = v end
  redis.call(unpack(args))
end

-- The type of an error JSON {type, message}, for the failed/retry/cancelled events ('' when unreadable).
local function error_type(err)
  if not err then return '' end
  local ok, doc = pcall(cjson.decode, err)
  if ok and type(doc) == 'table' and type(doc['type']) == 'string' then return doc['type'] end
  return ''
end
