-- _promote.lua: scheduled jobs (delayed, or backing off) become pending when due. Needs _lib.lua and _events.lua.

-- Move due scheduled jobs to pending. Returns how many moved.
local function promote_due(scheduled, pending, marker, job_prefix, now, limit)
  local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', fmt(now), 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', scheduled, id)
    local jk = job_prefix .. id
    local cur = redis.call('HMGET', jk, 'priority', 'attempts')
    if cur[1] then
      make_ready(pending, jk, id, cur[1], now)
      emit_event(id, 'queued', 'queued', cur[2])
    end
  end
  if #due > 0 then wake(marker) end
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
  local wait = next_due_in(scheduled, now)
  if wait ~= 0 then return wait end
  promote_due(scheduled, pending, marker, job_prefix, now, limit)
  return next_due_in(scheduled, now)
end
