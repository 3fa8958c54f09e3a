#!lua
-- purge.lua: delete up to a batch of a queue's pending jobs (queued, waiting for a worker), for good.
-- Scheduled jobs (delayed, or backing off before a retry) and running ones are left alone. A caller
-- empties a big queue by calling again while a batch comes back full: each call's work is bounded,
-- and each is atomic (a job is either still pending or gone with its hash and its key record).
--
-- A purged job's idempotency record is deleted when it still names that job: the key names nothing
-- any more, so a repeat of the request enqueues it afresh rather than returning a job that is gone.
--
-- KEYS[1] pending   KEYS[2] stats   KEYS[3] event stream
-- ARGV[1] job key prefix   ARGV[2] idempotency record prefix   ARGV[3] events channel
-- ARGV[4] most jobs to purge in this call   ARGV[5] event stream max length
-- Returns: {purged, pending left}

--@include _lib.lua
--@include _events.lua

local pending = KEYS[1]
local stats = KEYS[2]
local event_stream = KEYS[3]
events_to(event_stream, ARGV[5])

local job_prefix = ARGV[1]
local idem_prefix = ARGV[2]
local events = ARGV[3]
local limit = tonumber(ARGV[4])

local popped = redis.call('ZPOPMIN', pending, limit)
local lines = {}
for i = 1, #popped, 2 do
  local id = popped[i]
  local jk = job_prefix .. id
  local raw, attempts = unpack(redis.call('HMGET', jk, 'payload', 'attempts'))
  -- Only a payload that names a key is decoded (most do not: a plain find is cheaper than cjson).
  if raw and string.find(raw, '"idempotency_key"', 1, true) then
    local doc = decode_payload(raw)
    local key = doc and doc['idempotency_key']
    if type(key) == 'string' then
      local record = idem_prefix .. key
      local names = redis.call('GET', record)
      if names and string.sub(names, 1, #id + 1) == id .. ' ' then redis.call('DEL', record) end
    end
  end
  redis.call('DEL', jk)
  lines[#lines + 1] = id .. ' purged'
  emit_event(id, 'purged', 'purged', attempts)
end
local n = #popped / 2
if n > 0 then
  redis.call('HINCRBY', stats, 'purged', n)
  -- Waiters on these jobs (GET /jobs/{id}?wait=) wake now and find them gone, one message per batch.
  redis.call('PUBLISH', events, table.concat(lines, '\n'))
end
flush_events()
return {n, redis.call('ZCARD', pending)}
