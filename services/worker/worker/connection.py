"""Riding out a Redis outage: capped exponential backoff with full jitter, and one log line per state
change (not per attempt), shared by the event loop and the lease thread."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from dataclasses import dataclass

from redis.asyncio import Redis

log = logging.getLogger("taskq.worker")


@dataclass(slots=True)
class Backoff:
    base: float = 0.05
    cap: float = 5.0
    attempt: int = 0

    def next_delay(self) -> float:
        """The next wait: uniform in [0, min(cap, base * 2^attempt)] so a fleet does not retry in step."""
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 30)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


async def drop_idle_connections(redis: Redis) -> None:
    """After a failure, close the pool's idle connections: after a Redis restart every pooled
    connection is dead, and each would otherwise fail once on its next use, long after the first
    failure, making the outage look like it flaps."""
    with contextlib.suppress(Exception):
        await redis.connection_pool.disconnect(inuse_connections=False)


class RedisState:
    """Up or down, as last seen by anyone in this process. Logs only the transitions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._up = True

    @property
    def up(self) -> bool:
        return self._up

    def failed(self, where: str, exc: BaseException) -> None:
        with self._lock:
            if not self._up:
                return
            self._up = False
        log.warning("redis unavailable: retrying with backoff", extra={"where": where, "error": str(exc)})

    def succeeded(self) -> None:
        if self.up:
            return
        with self._lock:
            was_up, self._up = self._up, True
        if was_up:
            return
        log.warning("redis reachable again: resuming")
