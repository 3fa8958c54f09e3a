#!lua
-- promote.lua: move scheduled jobs whose time has come to pending (claim does this too, on its way;
-- this lets the maintenance timer do it while every worker is busy).
--
-- KEYS[1] scheduled   KEYS[2] pending   KEYS[3] marker   KEYS[4] event stream
-- ARGV[1] job key prefix   ARGV[2] max jobs   ARGV[3] event stream max length
-- Returns: {promoted, next_due_ms (-1 when none)}

--@include _lib.lua
--@include _events.lua
--@include _promote.lua

local scheduled = KEYS[1]
local pending = KEYS[2]
local marker = KEYS[3]
local event_stream = KEYS[4]

local job_prefix = ARGV[1]
local max_jobs = tonumber(ARGV[2])
events_to(event_stream, ARGV[3])

local now = now_ms()
local moved = promote_due(scheduled, pending, marker, job_prefix, now, max_jobs)
flush_events()
return {moved, next_due_in(scheduled, now)}
