"""The enqueue -> handler-start measure, one loop for taskq's client and its peers alike.

Standard library and redis-py only, no taskq: a peer's own interpreter (``bench/.venv-*``, with
``bench`` on its path) imports it too, so both sides are timed by the same lines. Each job carries
``t0`` (``perf_counter_ns`` just before the enqueue call); its handler pushes ``"<t0> <started>"``
to a Redis list, and every reply is matched to its job by t0 (a late one is skipped)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def stamp_latencies(
    enqueue: Callable[[int], Awaitable[object]],
    stamps: Any,  # a redis.asyncio.Redis
    key: str,
    *,
    warmup: int,
    jobs: int,
    gap: float,
) -> list[float]:
    """Milliseconds from calling ``enqueue(t0)`` to the handler starting, for ``jobs`` jobs after
    ``warmup``, one at a time with ``gap`` seconds between them (an idle worker)."""
    clock = time.perf_counter_ns
    latencies: list[float] = []
    for i in range(warmup + jobs):
        await asyncio.sleep(gap)  # a gap, not synchronisation (the stamp is awaited below)
        t0 = clock()
        await enqueue(t0)
        while True:
            got = await stamps.blpop([key], timeout=60)
            if got is None:
                raise RuntimeError(f"no stamp came back on {key} in 60 s: is the worker running?")
            sent, started = (int(v) for v in got[1].split())
            if sent == t0:
                break
        if i >= warmup:
            latencies.append((started - sent) / 1e6)
    return latencies
