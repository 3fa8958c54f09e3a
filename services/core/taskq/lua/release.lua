#!lua flags=allow-oom
-- release.lua: hand jobs back on graceful shutdown, without using up an attempt. They go to the head
-- of their priority band (scored by creation time), so they run before work enqueued after them.
-- A released job whose cancellation was requested is cancelled instead.
--
-- KEYS[1] active   KEYS[2] pending   KEYS[3] marker   KEYS[4] stats   KEYS[5] event stream
-- ARGV[1] job key prefix   ARGV[2] result TTL ms   ARGV[3] events channel
-- ARGV[4] event stream max length   ARGV[5..] pairs (id, token)
-- Returns: number of jobs handed back (or cancelled); pairs with a stale token are skipped

--@include _lib.lua
--@include _events.lua
--@include _outcomes.lua

local active = KEYS[1]
local pending = KEYS[2]
local marker = KEYS[3]
local stats = KEYS[4]
local event_stream = KEYS[5]

local job_prefix = ARGV[1]
local result_ttl_ms = ARGV[2]
local events = ARGV[3]
events_to(event_stream, ARGV[4])
local FIRST_PAIR = 5

local now = now_ms()
local released = 0
for i = FIRST_PAIR, #ARGV, 2 do
  local id = ARGV[i]
  local jk = job_prefix .. id
  local cur = redis.call('HMGET', jk, 'token', 'cancel', 'priority', 'payload')
  if cur[1] == ARGV[i + 1] then
    redis.call('ZREM', active, id)
    -- Handed back unfinished: this attempt does not count.
    redis.call('HINCRBY', jk, 'attempts', -1)
    if cur[2] then
      mark_cancelled(stats, events, jk, id, now, result_ttl_ms)
    else
      requeue_at_head(pending, jk, id, cur[3], decode_payload(cur[4]), now, 'released')
    end
    released = released + 1
  end
end
if released > 0 then wake(marker) end
flush_events()
return released
