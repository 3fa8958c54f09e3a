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
-- A script calls events_to(KEYS[...], ARGV[...]) once at its top, then emit_event() per change. The
-- types: queued, scheduled, running, progress, retry, succeeded, failed, cancelled, cancel_requested,
-- released, reaped, redriven, purged (docs/events.md lists them with their statuses).

local event_stream, event_max_len, event_trimmed = nil, nil, false

local function events_to(key, max_len)
  event_stream, event_max_len = key, max_len
end

-- One event. attempt is the job's attempts count after the change (0 before its first run).
-- The cap is applied once per script call, before its first event (XTRIM MAXLEN ~), not on every
-- XADD: a MAXLEN on each entry cost ~1-3 us more per XADD (measured), and the claim and the fused
-- ack+claim write two events per job. The stream may so pass the cap by one call's events.
local function emit_event(id, kind, status, attempt, extras)
  if not event_trimmed then
    redis.call('XTRIM', event_stream, 'MAXLEN', '~', event_max_len)
    event_trimmed = true
  end
  attempt = tonumber(attempt) or 0
  if not extras then
    -- The hot path (queued, running, succeeded): one call, no table built.
    redis.call('XADD', event_stream, '*', 'job', id, 'type', kind, 'status', status, 'attempt', attempt)
    return
  end
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
