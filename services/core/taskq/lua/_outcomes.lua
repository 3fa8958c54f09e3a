-- _outcomes.lua: how a job leaves a worker (or the queue) for good or goes back to wait; one helper
-- per state change, shared by the scripts that make it, each writing its event. Needs _lib.lua and
-- _events.lua.

-- The common end of a job that is done for good: nobody holds it, its hash expires after ttl_ms, the
-- counter named for its end goes up and waiters hear "<id> <status>".
local function close_job(stats, events, jk, id, status, counter, ttl_ms)
  redis.call('HDEL', jk, 'token', 'cancel')
  redis.call('PEXPIRE', jk, ttl_ms)
  redis.call('HINCRBY', stats, counter, 1)
  redis.call('PUBLISH', events, id .. ' ' .. status)
end

-- End a job as cancelled (a cancel request honoured). The hash keeps its result for result_ttl_ms;
-- err, when given, records the failure of the attempt that was stopped.
local function mark_cancelled(stats, events, jk, id, now, result_ttl_ms, err)
  redis.call('HSET', jk, 'status', 'cancelled', 'finished_at', fmt(now))
  local extras = nil
  if err then
    redis.call('HSET', jk, 'error', err)
    extras = {'error', error_type(err)}
  end
  emit_event(id, 'cancelled', 'cancelled', redis.call('HGET', jk, 'attempts'), extras)
  close_job(stats, events, jk, id, 'cancelled', 'cancelled', result_ttl_ms)
end

-- Move a job to the dead-letter set for good, with its error and reason. The hash expires after
-- dead_ttl_ms.
local function dead_letter(dead, stats, events, jk, id, err, reason, now, dead_ttl_ms)
  redis.call('HSET', jk, 'status', 'failed', 'error', err, 'reason', reason, 'finished_at', fmt(now))
  redis.call('ZADD', dead, fmt(now), id)
  emit_event(id, 'failed', 'failed', redis.call('HGET', jk, 'attempts'),
    {'error', error_type(err), 'reason', reason})
  close_job(stats, events, jk, id, 'failed', 'dead', dead_ttl_ms)
end

-- Put a job taken back from its worker (handed back, or its lease expired) at the head of its
-- priority band: scored by its creation time (doc: the decoded payload), it runs before work
-- enqueued after it. Dropping the token refuses the old holder's late ack. The caller wakes a worker.
-- kind names the event: 'released' (handed back) or 'reaped' (lease expired).
local function requeue_at_head(pending, jk, id, priority, doc, now, kind)
  local created = (doc and tonumber(doc['created_at'])) or now
  redis.call('HDEL', jk, 'token', 'cancel')
  make_ready(pending, jk, id, priority, created)
  emit_event(id, kind, 'queued', redis.call('HGET', jk, 'attempts'))
end
