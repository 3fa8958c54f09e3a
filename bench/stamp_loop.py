"""The enqueue -> handler-start measure, one job at a time, for taskq's client and its peers alike.

Standard library and redis-py only, no taskq: a peer's own interpreter (``bench/.venv-*``, with
``bench`` on its path) imports it too, so both sides are timed by the same lines. Each job carries
``t0`` (``perf_counter_ns`` just before the enqueue call); its handler pushes ``"<t0> <started>"``
to a Redis list, and every reply is matched to its job by t0 (a late one is skipped).

``bench.client`` interleaves the systems job by job: each system's client is a process running
``serve_stamps`` (one job per line it reads), so a burst of noise on a shared host falls on both
rather than on whichever system happened to be measured at that moment.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: Seconds the first job may take to come back: a worker just started may still be importing.
FIRST_JOB_TIMEOUT = 60


async def stamp_once(
    enqueue: Callable[[int], Awaitable[object]], stamps: Any, key: str, *, gap: float, timeout: float = 10
) -> float:
    """Milliseconds from calling ``enqueue(t0)`` to the handler starting, after ``gap`` seconds of
    idleness (the worker has acked its last job and is blocked waiting again). ``stamps`` is a
    ``redis.asyncio.Redis``."""
    await asyncio.sleep(gap)  # a gap, not synchronisation (the stamp is awaited below)
    t0 = time.perf_counter_ns()
    await enqueue(t0)
    while True:
        got = await stamps.blpop([key], timeout=timeout)
        if got is None:
            raise RuntimeError(f"no stamp came back on {key} in {timeout} s: is the worker running?")
        sent, started = (int(v) for v in got[1].split())
        if sent == t0:
            return (started - sent) / 1e6


async def serve_stamps(
    enqueue: Callable[[int], Awaitable[object]], stamps: Any, key: str, gap: float
) -> None:
    """One system's client in an interleaved run: once its first job has come back, print ``ready``;
    then for each line read from stdin, run one job and print its latency (ms); stop at EOF."""
    await stamp_once(enqueue, stamps, key, gap=gap, timeout=FIRST_JOB_TIMEOUT)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(await stamp_once(enqueue, stamps, key, gap=gap), flush=True)
