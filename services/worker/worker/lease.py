"""The lease keeper: a thread with its own event loop and its own Redis connection that renews every
lease in hand in one round trip per ``HEARTBEAT_SECONDS`` (the registry entry rides along), and runs the
fleet-wide maintenance (reap + promote, at most once per interval across all workers).

It lives off the handlers' path on purpose: a handler that blocks the event loop, or a burst of work
that keeps it busy, cannot delay a heartbeat until a lease expires. What it learns (a lease lost, a
cancellation requested) is handed to the event loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from redis.asyncio.client import Pipeline

from taskq import ClaimedJob, RedisUnavailable, ScriptCode, Taskq, connect
from taskq.workers import WorkerBeat, queue_beat
from worker.connection import REDIS_ERRORS, RedisState, drop_idle_connections
from worker.settings import WorkerSettings

log = logging.getLogger("taskq.worker")


@dataclass(slots=True)
class Lease:
    queue: str
    token: int
    #: time.monotonic() until which the lease is known to hold (last confirmed renewal + lease).
    until: float


class Leases:
    """The jobs in hand, shared by the event loop (adds, removes) and the lease thread (renews)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Lease] = {}

    def add_many(self, jobs: Iterable[ClaimedJob], until: float) -> None:
        with self._lock:
            for job in jobs:
                self._by_id[job.id] = Lease(job.queue, job.token, until)

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._by_id.pop(job_id, None)

    def get(self, job_id: str) -> Lease | None:
        return self._by_id.get(job_id)

    def held_by_queue(self) -> dict[str, list[tuple[str, int]]]:
        with self._lock:
            items = list(self._by_id.items())
        out: dict[str, list[tuple[str, int]]] = {}
        for job_id, lease in items:
            out.setdefault(lease.queue, []).append((job_id, lease.token))
        return out

    def renewed(self, job_id: str, token: int, until: float) -> None:
        with self._lock:
            lease = self._by_id.get(job_id)
            if lease is not None and lease.token == token:
                lease.until = until

    def __len__(self) -> int:
        return len(self._by_id)


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    host: str
    pid: int
    started_at_ms: int


class LeaseKeeper(threading.Thread):
    def __init__(
        self,
        settings: WorkerSettings,
        identity: Identity,
        leases: Leases,
        state: RedisState,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[str, int], None],
        on_cancel: Callable[[str, int], None],
    ) -> None:
        super().__init__(name="taskq-lease-keeper", daemon=True)
        self.settings, self.identity, self.leases, self.state = settings, identity, leases, state
        self.main_loop, self.on_lost, self.on_cancel = loop, on_lost, on_cancel
        self.queues: Sequence[str] = settings.queue_names()
        # What GET /workers shows this worker runs: the registry loaded (and checked) at start.
        self.tasks = tuple(settings.tasks().names())
        self.beats = 0  # successful heartbeats (tests and `check` use it)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._started = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    def start_and_wait(self) -> None:
        self.start()
        self._started.wait(10)

    def stop(self, timeout: float = 5.0) -> None:
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and self.is_alive():
            # The thread may end between the check and the call: its loop is closed then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
        self.join(timeout)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._started.set()
        redis = connect(self.settings, max_connections=4)
        taskq = Taskq.from_settings(redis, self.settings)
        interval = self.settings.heartbeat_seconds
        next_maintenance = 0.0
        try:
            while not self._stop_event.is_set():
                started = time.monotonic()
                try:
                    await self._beat(taskq, started)
                    if started >= next_maintenance and self.state.reachable:
                        next_maintenance = started + self.settings.worker_maintenance_seconds
                        await self._maintain(taskq)
                except Exception as exc:
                    # Whatever went wrong, this thread must live on: without it every lease in hand
                    # lapses and the jobs run twice. The state logs it once, not once per beat.
                    self.state.failed("lease keeper", exc)
                delay = max(0.0, interval - (time.monotonic() - started))
                try:
                    async with asyncio.timeout(delay):
                        await self._stop_event.wait()
                except TimeoutError:
                    pass
        finally:
            await redis.aclose()

    async def _beat(self, taskq: Taskq, sent_at: float) -> None:
        held = self.leases.held_by_queue()
        beat = WorkerBeat(
            id=self.identity.id,
            host=self.identity.host,
            pid=self.identity.pid,
            started_at_ms=self.identity.started_at_ms,
            concurrency=self.settings.worker_concurrency,
            queues=tuple(self.queues),
            jobs=tuple(job_id for pairs in held.values() for job_id, _ in pairs),
            tasks=self.tasks,
        )
        ttl_ms = int(max(3 * self.settings.heartbeat_seconds, self.settings.lease_seconds) * 1000)

        def also(pipe: Pipeline) -> None:
            queue_beat(pipe, taskq, beat, ttl_ms)

        try:
            try:
                codes = await taskq.heartbeat(held, also=also)
            except RedisUnavailable:
                # This thread's connection may just be stale (Redis restarted while it sat idle): a
                # renewal is idempotent, so try once more on a fresh connection before crying outage.
                await drop_idle_connections(taskq.redis)
                codes = await taskq.heartbeat(held, also=also)
        except REDIS_ERRORS as exc:
            self.state.failed("heartbeat", exc)
            return
        # Heartbeats run at maxmemory too: this says Redis answers, not that it has room again.
        self.state.succeeded(room=False)
        self.beats += 1
        until = sent_at + self.settings.lease_seconds
        # Each answer is about one lease, (job id, token): the job may have been reaped and claimed
        # again since the snapshot, and the event loop only acts on the run holding that token.
        for (job_id, token), code in codes.items():
            if code == ScriptCode.STALE_TOKEN:
                self.main_loop.call_soon_threadsafe(self.on_lost, job_id, token)
                continue
            self.leases.renewed(job_id, token, until)
            if code == ScriptCode.CANCEL_REQUESTED:
                self.main_loop.call_soon_threadsafe(self.on_cancel, job_id, token)

    async def _maintain(self, taskq: Taskq) -> None:
        lock = self.settings.worker_maintenance_seconds
        try:
            for queue in self.queues:
                reaped = await taskq.reap(queue, lock_seconds=lock, owner=self.identity.id)
                if not reaped.ran:
                    continue
                promoted = await taskq.promote(queue)
                self.state.succeeded()  # promote is refused at maxmemory: Redis has room
                if reaped.requeued or reaped.dead or promoted:
                    log.info(
                        "maintenance",
                        extra={"queue": queue, "requeued": reaped.requeued, "dead": reaped.dead,
                               "promoted": promoted},
                    )  # fmt: skip
        except REDIS_ERRORS as exc:
            self.state.failed("maintenance", exc)
            if isinstance(exc, RedisUnavailable):
                await drop_idle_connections(taskq.redis)
