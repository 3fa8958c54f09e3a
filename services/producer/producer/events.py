"""The producer's two event paths: the Pub/Sub wake-up of ``GET /jobs/{id}?wait=N`` (``EventHub``), and
the connections behind the Server-Sent Events routes (``EventStreams``, used by ``producer.api.events``).

``?wait=`` stays on Pub/Sub, not on the job event streams: it only needs "this job may have ended", one
PSUBSCRIBE per process already delivers that to any number of waiters, and scripts publish once per
batch of acks. Moving it onto the streams would cost either a blocked connection per waiting request
or a per-process stream reader re-implementing this fan-out, for no gain in what a waiter learns.

EventHub: one Pub/Sub subscriber per process that wakes ``GET /jobs/{id}?wait=N`` requests.

Scripts PUBLISH '<job id> <status>' on their queue's events channel when a job reaches a terminal
state; this hub PSUBSCRIBEs to every queue's channel once and resolves the futures of the requests
waiting on that id. A waiter registers *before* reading the job, so an event between the read and
the wait is not missed. While the subscription is down (Redis restart) events can be missed, so
every reconnect wakes all waiters to read their job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from producer.problems import ProblemError

log = logging.getLogger("producer.events")

#: Silence after which the subscriber PINGs, and the time a PING has to answer before reconnecting.
IDLE_PING_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 3.0


class EventHub:
    def __init__(self, redis: Redis, pattern: str) -> None:
        self.redis = redis
        self.pattern = pattern
        self.ready = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="taskq-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._wake_all()

    @contextlib.contextmanager
    def waiter(self, job_id: str) -> Iterator[asyncio.Future[None]]:
        """A future resolved when ``job_id`` may have changed (its event, or a resubscription)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(future)
        try:
            yield future
        finally:
            waiting = self._waiters.get(job_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[job_id]

    def _wake(self, job_id: str) -> None:
        for future in self._waiters.pop(job_id, ()):
            if not future.done():
                future.set_result(None)

    def _wake_all(self) -> None:
        for job_id in list(self._waiters):
            self._wake(job_id)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event subscription lost", extra={"error": type(exc).__name__})
            finally:
                self.ready.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)  # reconnect backoff, not synchronisation
            backoff = min(backoff * 2, 2.0)

    async def _listen(self, pubsub: PubSub) -> None:
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            await pubsub.psubscribe(self.pattern)
            # Wait for the confirmation: only then are events guaranteed to reach us.
            while (
                await pubsub.get_message(ignore_subscribe_messages=False, timeout=PING_TIMEOUT_SECONDS)
                is None
            ):
                pass
        self.ready.set()
        self._wake_all()  # events may have been missed while we were not subscribed
        pinged = False
        while True:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=PING_TIMEOUT_SECONDS if pinged else IDLE_PING_SECONDS
            )
            if message is None:
                if pinged:
                    raise ConnectionError("the subscription did not answer a PING")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] == "pmessage":
                # One line per job ("<id> <status>"): a batch of acks publishes once.
                for line in message["data"].decode("utf-8", "replace").splitlines():
                    self._wake(line.partition(" ")[0])


class EventStreams:
    """The Redis connections of the SSE routes: one dedicated connection per open stream, at most
    ``max_streams`` per process (a request past that is a 503 before any stream starts).

    A connection per stream, not one reader per process fanning out: each stream resumes from its
    own Last-Event-ID, replays its own window and blocks in its own XREAD, so there is no hand-over
    between a replay and a shared live feed to get wrong (the gap or duplicate at the seam), and a
    slow client only ever holds its own connection. The cost is a connection and a read of the
    queue's events per stream, fine for dashboards and job followers (tens per process); a deployment
    with thousands of followers would want the fan-out (or a proxy in front)."""

    def __init__(self, redis: Redis, max_streams: int) -> None:
        self.redis = redis
        self.max_streams = max_streams
        self.open = 0

    def reserve(self) -> None:
        """Take a stream slot or refuse (503 problem, Retry-After): call before the response starts,
        and ``release`` exactly once after it ends (``producer.api.events.EventStreamResponse``)."""
        if self.open >= self.max_streams:
            raise ProblemError(
                503,
                f"this producer already serves {self.max_streams} event streams; try again later",
                slug="too-many-streams",
                headers={"Retry-After": "5"},
            )
        self.open += 1

    def release(self) -> None:
        self.open -= 1

    async def aclose(self) -> None:
        await self.redis.aclose()
