#!lua flags=no-writes
-- stats.lua: one consistent snapshot of a queue's depth by state, its counters, and the enqueue time
-- of its oldest pending job (the minimum over the priority bands of the pending set).
--
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] active   KEYS[4] dead   KEYS[5] stats
-- Returns: {pending, scheduled, running, dead, now_ms, oldest_pending_ms (-1 when empty), counters...}
--   counters as a flat HGETALL list: name, value, name, value...

--@include _lib.lua

local pending = KEYS[1]
local scheduled = KEYS[2]
local active = KEYS[3]
local dead = KEYS[4]
local stats = KEYS[5]

local oldest = -1
for band = 0, MAX_PRIORITY do
  local lo = band * BAND
  local first = redis.call('ZRANGEBYSCORE', pending, fmt(lo), '(' .. fmt(lo + BAND), 'WITHSCORES', 'LIMIT', 0, 1)
  if #first > 0 then
    local ms = tonumber(first[2]) - lo
    if oldest < 0 or ms < oldest then oldest = ms end
  end
end
local out = {
  redis.call('ZCARD', pending), redis.call('ZCARD', scheduled), redis.call('ZCARD', active),
  redis.call('ZCARD', dead), now_ms(), oldest,
}
local counters = redis.call('HGETALL', stats)
for _, v in ipairs(counters) do out[#out + 1] = v end
return out
