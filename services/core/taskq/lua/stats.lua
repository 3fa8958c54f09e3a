#!lua flags=no-writes
-- stats.lua: one consistent snapshot of a queue's depth by state, its counters, and the enqueue time
-- of its oldest pending job (the minimum over the ten priority bands of the pending set).
--
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] active   KEYS[4] dead   KEYS[5] stats
-- Returns: {pending, scheduled, running, dead, now_ms, oldest_pending_ms (-1 when empty), counters...}
--   counters as a flat HGETALL list: name, value, name, value...

--@include _lib.lua

local oldest = -1
for band = 0, 9 do
  local lo = band * BAND
  local first = redis.call('ZRANGEBYSCORE', KEYS[1], fmt(lo), '(' .. fmt(lo + BAND), 'WITHSCORES', 'LIMIT', 0, 1)
  if #first > 0 then
    local ms = tonumber(first[2]) - lo
    if oldest < 0 or ms < oldest then oldest = ms end
  end
end
local out = {
  redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]), now_ms(), oldest,
}
local counters = redis.call('HGETALL', KEYS[5])
for _, v in ipairs(counters) do out[#out + 1] = v end
return out
