"""Job timeouts on a handful of timers instead of one per job.

Deadlines are rounded up to ``RESOLUTION`` and share a bucket: a batch of jobs claimed together (same
timeout) costs one timer, and a job that finishes just drops out of its bucket. A timeout fires at
most ``RESOLUTION`` late, which no job timeout (seconds to hours) notices.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

RESOLUTION = 0.05


class Deadlines(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, on_expire: Callable[[T], None]) -> None:
        self._loop = loop
        self._on_expire = on_expire
        self._buckets: dict[int, set[T]] = {}

    def add(self, item: T, seconds: float) -> int:
        key = math.ceil((self._loop.time() + seconds) / RESOLUTION)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
            self._loop.call_at(key * RESOLUTION, self._fire, key)
        bucket.add(item)
        return key

    def remove(self, item: T, key: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(item)

    def _fire(self, key: int) -> None:
        for item in self._buckets.pop(key, ()):
            self._on_expire(item)
