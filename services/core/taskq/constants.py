"""Numbers the Python side and the Lua scripts must agree on, declared once.

A script says ``--@const NAME`` on a line of its own and ``scripts.py`` writes ``local NAME = <value>``
there from this module, so a pending score computed in Python (the plain-MULTI enqueue) and one
computed in Lua can never drift apart.
"""

from __future__ import annotations

#: Priorities run 0..MAX_PRIORITY; the most urgent sorts first in the pending set.
MAX_PRIORITY = 9
#: The priority a job hash without one is read as.
DEFAULT_PRIORITY = 5
#: Width of one priority band of pending scores, in ms: score = (MAX_PRIORITY - priority) * BAND + ms.
#: 2^42 ms is ~139 years, and 10 bands of it stay below 2^53, so every score is an exact double.
BAND = 2**42
#: Upper bounds (ms) of the latency histograms' buckets: job wait and run time (Lua, in each queue's
#: histogram hash) and API request duration (the producer). 1 ms to 1 h, roughly 1-2.5-5 per decade;
#: an observation above the last bound lands in the +Inf bucket. Changing them re-labels the buckets
#: already counted in Redis (fields are bucket indexes): reset the histogram hashes when you do.
LATENCY_BUCKETS_MS = (
    1, 2, 5, 10, 25, 50, 100, 250, 500,  # under a second
    1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,  # 1 s to 1 h
)  # fmt: skip
#: Most job events one stream entry holds (a claim's or an ack batch's run of one type is written as
#: entries of at most this many). It bounds an entry's size, and so the memory of a stream capped at
#: EVENTS_MAX_LEN entries, at ~350 B (measured: 8 events, MEMORY USAGE over 20,000 entries), while a
#: batch of 100 still costs 13 XADDs instead of 100.
EVENTS_PER_ENTRY = 8
