#!lua
-- promote.lua: move scheduled jobs whose time has come to pending (claim does this too, on its way;
-- this lets the maintenance timer do it while every worker is busy).
--
-- KEYS[1] scheduled   KEYS[2] pending   KEYS[3] marker
-- ARGV[1] job key prefix   ARGV[2] max jobs
-- Returns: {promoted, next_due_ms (-1 when none)}

--@include _lib.lua

local now = now_ms()
local moved = promote_due(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now, tonumber(ARGV[2]))
return {moved, next_due_in(KEYS[1], now)}
