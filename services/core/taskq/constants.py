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
