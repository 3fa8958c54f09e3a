"""Riding out a Redis outage: capped exponential backoff with full jitter, and one log line per state
change (not per attempt), shared by the event loop and the lease thread."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskq import RedisFull, RedisUnavailable

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


#: What a call to Redis can raise: taskq's two translations (unreachable or timed out; full) and what
#: redis-py raises that taskq does not translate (a script error, an unexpected reply). Every loop of
#: the worker catches all of them, waits and tries again: one that dies stops the worker for good.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisUnavailable, RedisFull, RedisError)

_DOWN = {
    "unavailable": "redis unavailable: retrying with backoff",
    "full": "redis full (maxmemory): no new claims, leases and acks still go through; retrying with backoff",
    "error": "redis call failed: retrying with backoff",
}
_UP = {
    "unavailable": "redis reachable again: resuming",
    "full": "redis has room again: resuming",
    "error": "redis calls succeed again: resuming",
}


def condition_of(exc: BaseException) -> str:
    if isinstance(exc, RedisFull):
        return "full"
    if isinstance(exc, RedisUnavailable):
        return "unavailable"
    return "error"


class RedisState:
    """Up, or down with a condition ("unavailable", "full", "error"), as last seen by anyone in this
    process. Logs only the changes: one line when a condition starts, one when it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down: str | None = None

    @property
    def up(self) -> bool:
        return self._down is None

    @property
    def reachable(self) -> bool:
        """Redis answers (maybe only to the calls it runs when full): worth sending maintenance."""
        return self._down != "unavailable"

    def failed(self, where: str, exc: BaseException) -> None:
        condition = condition_of(exc)
        with self._lock:
            if self._down == condition:
                return
            self._down = condition
        log.warning(
            _DOWN[condition],
            exc_info=exc if condition == "error" else None,
            extra={"where": where, "error": str(exc) or type(exc).__name__},
        )

    def succeeded(self, *, room: bool = True) -> None:
        """A call went through. ``room=False``: a call Redis runs even at maxmemory (heartbeat, ack,
        fail, release, reap); it proves Redis answers, not that it has room again, so it does not end
        a "full" condition (which would otherwise flap at every heartbeat while claims are refused)."""
        down = self._down
        if down is None or (down == "full" and not room):
            return
        with self._lock:
            was, self._down = self._down, None
        if was is not None:
            log.warning(_UP[was])
