"""Riding out a Redis outage: capped exponential backoff with equal jitter, one log line per state change
(not per attempt) shared by the event loop and the lease thread, and ``Outage.retry_while_leased``, the
one way the worker retries a write it owes Redis (a failure, a hand-back, an ack, a cron tick)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskq import RedisFull, RedisUnavailable

log = logging.getLogger("taskq.worker")

T = TypeVar("T")


@dataclass(slots=True)
class Backoff:
    base: float = 0.05
    cap: float = 5.0
    attempt: int = 0

    def next_delay(self) -> float:
        """The next wait: uniform in [ceiling/2, ceiling], ceiling = min(cap, base * 2^attempt) ("equal
        jitter"): spread so a fleet does not retry in step, yet never much shorter than the backoff."""
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


class Lapsed(enum.Enum):
    """What ``retry_while_leased`` returns when it gave up: the write no longer matters."""

    LAPSED = "lapsed"


LAPSED = Lapsed.LAPSED


class Outage:
    """How a loop of the worker meets a failed Redis call: the state notes it (logged once), the pool's
    connections are dropped when Redis was unreachable (they are all dead after a restart), and the
    retry waits with backoff, cut short by a hard stop."""

    def __init__(
        self,
        state: RedisState,
        reconnect: Callable[[], Awaitable[None]],
        hard_stop: asyncio.Event | None = None,
    ) -> None:
        self.state, self.reconnect, self.hard_stop = state, reconnect, hard_stop

    async def failed(self, where: str, exc: Exception) -> None:
        self.state.failed(where, exc)
        if isinstance(exc, RedisUnavailable):
            await self.reconnect()

    async def pause(self, seconds: float) -> None:
        """Wait before a retry; a hard stop cuts it short."""
        if self.hard_stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.hard_stop.wait()

    async def retry_while_leased(
        self, where: str, call: Callable[[], Awaitable[T]], leased: Callable[[], bool], *, room: bool = True
    ) -> T | Lapsed:
        """Run ``call`` until it goes through, retrying through an outage for as long as ``leased()``
        says the write still matters (a job's lease holds; a cron tick's window is open) and no hard stop
        came. ``leased`` is asked after each failure, never before the first try. ``room=False``: a call
        Redis runs even at maxmemory (see ``RedisState.succeeded``)."""
        backoff = Backoff()
        while True:
            try:
                result = await call()
            except REDIS_ERRORS as exc:
                await self.failed(where, exc)
                if not leased() or (self.hard_stop is not None and self.hard_stop.is_set()):
                    return LAPSED
                await self.pause(backoff.next_delay())
                continue
            self.state.succeeded(room=room)
            return result
