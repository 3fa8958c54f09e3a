"""The worker: claims jobs in batches, runs up to ``WORKER_CONCURRENCY`` at once, acks them in batches,
and stops gracefully.

Round trips: in steady state the ack flusher sends every ack finished since its last flush in one
``complete`` call that also claims the freed slots' next jobs, so a busy worker needs about one round
trip per batch of jobs (natural batching: no timer; while a flush is in flight, acks accumulate). The
fetch loop only claims for slots nobody refilled, and when no work is waiting it blocks in BZPOPMIN
(bounded by the next scheduled job) instead of polling. Leases are renewed by the lease thread.

A job stays "held" (counted against capacity and leased) from its claim until its outcome is recorded
in Redis: an ack, a failure, a hand-back, or until its lease is known lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from taskq import Ack, ClaimedJob, RedisUnavailable, Taskq, TaskRegistry, Waiter
from taskq.models import dumps
from taskq.workers import deregister
from worker.connection import REDIS_ERRORS, Backoff, RedisState, drop_idle_connections
from worker.cron import CronScheduler
from worker.deadlines import Deadlines
from worker.jobs import JobRunner
from worker.lease import Identity, LeaseKeeper, Leases
from worker.queues import WeightedPicker
from worker.settings import WorkerSettings
from worker.shutdown import EXIT_JOBS_LEFT_RUNNING, drain_acks, finish_in_hand, hand_back

log = logging.getLogger("taskq.worker")

#: Ack batches on the wire at once. Two lets Python run one batch while Redis answers the other; more
#: only splits the same acks into smaller batches.
FLUSHES_IN_FLIGHT = 2
#: A claim that rode a blocking wait ran in Redis at some moment before its reply came back; the
#: local view of its lease starts this much before the reply (the real lease is Redis's, by TIME).
WAKE_MARGIN_SECONDS = 0.25


@dataclass(slots=True, eq=False)
class Held:
    job: ClaimedJob
    task: asyncio.Task[None] | None = None
    #: Why the worker itself stopped the job: "cancel", "lost", "timeout" or "shutdown".
    stop_reason: str | None = None
    stop_seen: bool = False  # the job runner caught the cancellation
    give_back: bool = False  # stopped at the end of the grace, its code ended: release it
    started: float = field(default_factory=time.monotonic)


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        *,
        taskq: Taskq,
        waiter: Waiter,
        registry: TaskRegistry,
        identity: Identity,
        burst: bool = False,
    ) -> None:
        self.settings, self.taskq, self.waiter, self.identity = settings, taskq, waiter, identity
        self.id = identity.id
        self.burst = burst
        self.queues = settings.queue_names()
        self.concurrency = settings.worker_concurrency
        self.capacity = settings.worker_concurrency + settings.worker_prefetch
        self.picker = WeightedPicker(settings.queue_weights())
        self.state = RedisState()
        self.leases = Leases()
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="taskq-job")
        self.jobs = JobRunner(self, registry)
        self.held: dict[str, Held] = {}
        self.ready: deque[Held] = deque()
        self.running = 0
        self.reserved = 0  # slots promised to claims in flight
        self.acks: dict[str, list[tuple[Ack, Held]]] = {}
        #: Claims the picker gave to a queue the flusher could not piggyback on: the fetch loop's next.
        self.owed: dict[str, int] = {}
        self.flushing = 0  # flushes in flight
        self._flushes: set[asyncio.Task[None]] = set()
        self.stopping = False
        #: What the fetch loop awaits in Redis: "claim", "wait" (blocked, maybe with a claim behind),
        #: or None (waiting for free slots, or pausing after an outage).
        self.in_redis: str | None = None
        self._closing = False  # the flusher exits once nothing is left to flush
        self._acks_ready = asyncio.Event()
        self._space = asyncio.Event()
        self.idle = asyncio.Event()  # no acks pending nor in flight
        self._stop = asyncio.Event()
        self.hard_stop = asyncio.Event()
        self.keeper: LeaseKeeper | None = None
        self.deadlines: Deadlines[Held] = Deadlines(asyncio.get_running_loop(), self._on_timeout)

    # ---------------------------------------------------------------- lifecycle

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info(
                "stopping: no new claims; jobs in hand may finish within the grace",
                extra={"in_hand": len(self.held), "grace_seconds": self.settings.worker_shutdown_grace},
            )
            self._stop.set()
        elif not self.hard_stop.is_set():
            log.warning("second stop signal: handing back every job in hand now")
            self.hard_stop.set()

    async def run(self, *, install_signals: bool = True) -> int:
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        self.keeper = LeaseKeeper(
            self.settings, self.identity, self.leases, self.state, loop, self._on_lost, self._on_cancel
        )
        self.keeper.start_and_wait()
        log.info(
            "worker started",
            extra={"worker_id": self.id, "queues": list(self.queues), "concurrency": self.concurrency,
                   "prefetch": self.settings.worker_prefetch, "redis": self.settings.redacted_redis_url()},
        )  # fmt: skip
        fetch = asyncio.create_task(self._fetch_loop(), name="fetch")
        flush = asyncio.create_task(self._flush_loop(), name="flush")
        cron = CronScheduler(self.settings, self.taskq, self.state)
        cron_task = asyncio.create_task(cron.run(), name="cron") if cron.jobs else None
        try:
            await self._stop.wait()
            self.stopping = True
            if cron_task is not None:
                cron_task.cancel()
            await self._end_fetch(fetch)
            await finish_in_hand(self)
            await drain_acks(self)
            # A claim whose reply was lost took jobs this worker never saw: fetch them now, so they go
            # back with the rest instead of waiting out their leases (an attempt lost each).
            recovered_at = time.monotonic()
            with contextlib.suppress(RedisUnavailable):
                self.accept(await self.taskq.recover_claims(self.id), recovered_at)
            # A flush in flight when the signal came may have claimed more: they go straight back.
            late_claims = list(self.ready)
            self.ready.clear()
            await hand_back(self, late_claims)
        finally:
            # Background loops end on flags as well as on cancel(): a cancellation that lands as a
            # redis call or a timeout completes can be absorbed, and stopping must not hang on it.
            self.stopping = self._closing = True
            self._acks_ready.set()
            self._space.set()
            background = {t for t in (fetch, flush, cron_task) if t is not None}
            _, stuck = await asyncio.wait(background, timeout=1.0)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=self.settings.worker_idle_wait_seconds + 3)
            self.keeper.stop()
            with contextlib.suppress(*REDIS_ERRORS):  # DEL and ZREM run even at maxmemory
                await deregister(self.taskq, self.id)
            self.pool.shutdown(wait=False, cancel_futures=True)
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        if self.running:
            # Handler threads that did not return even after the bound: nothing can stop them but
            # the end of this process, which the caller must bring about without waiting for them
            # (``serve`` does). Their leases lapse then, and the reaper hands them on.
            log.error(
                "exiting with jobs still running in threads: left to their leases",
                extra={"worker_id": self.id, "jobs": self.running},
            )
            return EXIT_JOBS_LEFT_RUNNING
        log.info("worker stopped", extra={"worker_id": self.id})
        return 0

    async def reset_connections(self) -> None:
        await drop_idle_connections(self.taskq.redis)
        self.waiter.wire.close()

    async def pause(self, seconds: float) -> None:
        """Wait before a retry; a second stop signal cuts it short."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.hard_stop.wait()

    # ---------------------------------------------------------------- jobs in hand

    def lease_alive(self, h: Held) -> bool:
        lease = self.leases.get(h.job.id)
        return lease is not None and time.monotonic() < lease.until

    def accept(self, jobs: list[ClaimedJob], sent_at: float) -> None:
        if not jobs:
            return
        self.leases.add_many(jobs, sent_at + self.settings.lease_seconds)
        for job in jobs:
            h = Held(job)
            old = self.held.get(job.id)
            if old is not None:
                # Taken back (reaped or handed back) and claimed again by us before a renewal told us
                # so: the old run is stale, stop it; the new claim is the one that counts.
                self.stop_job(old, "lost", force=True)
                with contextlib.suppress(ValueError):
                    self.ready.remove(old)
            self.held[job.id] = h
            if self.running < self.concurrency and not self.stopping:
                self._start(h)
            else:
                self.ready.append(h)

    def _start(self, h: Held) -> None:
        self.running += 1
        h.started = time.monotonic()
        h.task = asyncio.create_task(self.jobs.run(h))
        h.task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self.running -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("job runner crashed", exc_info=task.exception())
        while self.ready and self.running < self.concurrency and not self.stopping:
            self._start(self.ready.popleft())

    def forget(self, h: Held) -> None:
        """The job's outcome is settled (or no longer ours): free its slot."""
        if self.held.get(h.job.id) is h:  # not a newer claim of the same job
            del self.held[h.job.id]
            self.leases.remove(h.job.id)
            self._space.set()

    def ack(self, h: Held, ack: Ack) -> None:
        self.acks.setdefault(h.job.queue, []).append((ack, h))
        self._acks_ready.set()

    def stop_job(self, h: Held, reason: str, *, force: bool = False) -> None:
        """Cancel a running job's task, and cancel it again every 0.2 s until the job runner has seen
        it: a library may absorb one cancellation (one that lands as a timed read completes can be
        lost in Python 3.11), and a job that ignores its stop would hold its slot forever."""
        if force or h.stop_reason is None:
            h.stop_reason = reason
        self._cancel_until_seen(h)

    def _cancel_until_seen(self, h: Held) -> None:
        if h.task is None or h.task.done() or h.stop_seen:
            return
        h.task.cancel()
        asyncio.get_running_loop().call_later(0.2, self._cancel_until_seen, h)

    def _on_lost(self, job_id: str, token: int) -> None:
        h = self.held.get(job_id)
        if h is None or h.job.token != token:
            return  # not this run's lease: the job was taken back and claimed again since
        if h.task is not None and h.task.done():
            return  # already finished: its ack raced the renewal, and the ack decides
        log.warning("lease lost: another worker may run this job; stopping it here", extra={"job_id": job_id})
        if h.task is not None:
            self.stop_job(h, "lost", force=True)
        else:
            with contextlib.suppress(ValueError):
                self.ready.remove(h)
            self.forget(h)

    def _on_timeout(self, h: Held) -> None:
        if h.task is not None and not h.task.done() and h.stop_reason is None:
            self.stop_job(h, "timeout")

    def _on_cancel(self, job_id: str, token: int) -> None:
        h = self.held.get(job_id)
        if h is None or h.job.token != token or h.stop_reason is not None:
            return
        if h.task is not None:
            self.stop_job(h, "cancel")
        else:
            h.stop_reason = "cancel"
            with contextlib.suppress(ValueError):
                self.ready.remove(h)
            self.ack(h, Ack(h.job.id, h.job.token, cancelled=True))

    # ---------------------------------------------------------------- claiming

    async def _fetch_loop(self) -> None:
        backoff = Backoff()
        while not self.stopping:
            free = self.capacity - len(self.held) - self.reserved
            if free <= 0 or self.acks or self.flushing:
                # The flusher refills slots freed by acks in its own round trip.
                self._space.clear()
                await self._space.wait()
                continue
            try:
                self.in_redis = "claim"
                try:
                    got, due_ms = await self._claim(free)
                finally:
                    self.in_redis = None
                if got:
                    backoff.reset()
                    continue
                if self.burst and not self.held:
                    self._stop.set()
                    return
                wait = self.settings.worker_idle_wait_seconds
                if due_ms is not None:
                    wait = min(wait, due_ms / 1000)
                if self._stop.is_set():
                    return
                self.in_redis = "wait"
                try:
                    if len(self.queues) == 1:
                        await self._wait_and_claim(self.queues[0], free, wait)
                    else:
                        await self.waiter.wait_for_work(self.queues, wait)
                finally:
                    self.in_redis = None
                self.state.succeeded()
                backoff.reset()
            except Exception as exc:
                # Any failure (unreachable, full, a script error, a bug): the loop must live on, or
                # this worker never claims again. Reconnecting only helps when Redis was unreachable.
                self.state.failed("claim", exc)
                if isinstance(exc, RedisUnavailable):
                    await self.reset_connections()
                await self.pause(backoff.next_delay())

    async def _wait_and_claim(self, queue: str, free: int, wait: float) -> None:
        """Idle on one queue: block in Redis with the claim pipelined behind the pop, so the wake-up
        brings the jobs (one round trip). Never cancelled: ``_end_fetch`` interrupts it instead."""
        self.reserved += free
        sent_at = time.monotonic()
        try:
            batch = await self.waiter.wait_and_claim(queue, self.id, free, wait)
        finally:
            self.reserved -= free
        self.accept(batch.jobs, max(sent_at, time.monotonic() - WAKE_MARGIN_SECONDS))

    async def _end_fetch(self, fetch: asyncio.Task[None]) -> None:
        """Stop claiming. A call in Redis that may claim is never cancelled: the claim may already
        have run, and cancelling would strand its jobs until their leases ran out (an attempt lost).
        A claim is let finish; a blocked wait is ended from outside (CLIENT UNBLOCK). Whatever they
        claimed is handed back with the rest. The interrupt repeats until the loop is out, since one
        sent just before the wait began is moot.
        """
        deadline = time.monotonic() + self.settings.worker_idle_wait_seconds + 3
        self._space.set()
        while not fetch.done() and time.monotonic() < deadline and not self.hard_stop.is_set():
            if self.in_redis is None:
                break  # waiting for slots, or pausing after an outage: nothing to lose by cancelling
            if self.in_redis == "wait":
                with contextlib.suppress(*REDIS_ERRORS):
                    await self.waiter.interrupt()
            await asyncio.wait([fetch], timeout=0.1)
        if not fetch.done():
            fetch.cancel()
            await asyncio.wait([fetch], timeout=1.0)

    async def _claim(self, free: int) -> tuple[int, int | None]:
        """Claim up to ``free`` jobs across the queues by weight. Returns (claimed, ms to next due)."""
        got = 0
        due: list[int] = []
        alloc: dict[str, int] = {}
        budget = free
        for queue, n in self.owed.items():
            take = min(n, budget)
            if take > 0:
                alloc[queue] = take
                budget -= take
        self.owed.clear()
        for queue, n in self.picker.allocate(budget).items():
            alloc[queue] = alloc.get(queue, 0) + n
        order = list(alloc) + [q for q in self.picker.fallback_order() if q not in alloc]
        for queue in order:
            want = alloc.get(queue, 0) or (free - got)
            if want <= 0:
                break
            self.reserved += want
            sent_at = time.monotonic()
            try:
                batch = await self.taskq.claim(queue, self.id, want)
            finally:
                self.reserved -= want
            self.state.succeeded()
            self.accept(batch.jobs, sent_at)
            got += len(batch.jobs)
            if batch.next_due_ms is not None:
                due.append(batch.next_due_ms)
        return got, min(due) if due else None

    # ---------------------------------------------------------------- acking

    async def _flush_loop(self) -> None:
        """Send the acks gathered since the last flush, up to ``FLUSHES_IN_FLIGHT`` at a time: while one
        batch's round trip is out, the jobs claimed by the previous one run (Python and Redis overlap)."""
        backoff = Backoff()
        while True:
            if not self.acks or self.flushing >= FLUSHES_IN_FLIGHT:
                if not self.acks and not self.flushing:
                    self.idle.set()
                    if self._closing:
                        return
                self._acks_ready.clear()
                await self._acks_ready.wait()
                continue
            batch, self.acks = self.acks, {}
            self.flushing += 1
            freed = sum(len(items) for items in batch.values())
            alloc = {} if self.stopping else self.picker.allocate(freed)
            for queue, n in alloc.items():
                if queue not in batch:
                    self.owed[queue] = self.owed.get(queue, 0) + n
            flush = asyncio.create_task(self._flush_batch(batch, alloc, backoff))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _flush_batch(
        self, batch: dict[str, list[tuple[Ack, Held]]], alloc: dict[str, int], backoff: Backoff
    ) -> None:
        try:
            pending = list(batch.items())
            while pending:
                queue, items = pending.pop(0)
                if not await self._flush_queue(queue, items, alloc.get(queue, 0)):
                    for later, rest in pending:  # keep the other queues' acks for the next flush
                        self.acks[later] = rest + self.acks.get(later, [])
                    await self.pause(backoff.next_delay())
                    return
            backoff.reset()
        finally:
            self.flushing -= 1
            self._acks_ready.set()
            self._space.set()

    async def _flush_queue(self, queue: str, items: list[tuple[Ack, Held]], claim_next: int) -> bool:
        self.reserved += claim_next
        sent_at = time.monotonic()
        try:
            flags, batch = await self.taskq.complete(
                queue, [a for a, _ in items], worker_id=self.id, claim_next=claim_next
            )
        except REDIS_ERRORS as exc:
            self.state.failed("ack", exc)
            if isinstance(exc, RedisUnavailable):
                await self.reset_connections()
            keep = [(a, h) for a, h in items if self.lease_alive(h)]
            for _, h in (item for item in items if item not in keep):
                log.warning(
                    "result dropped: the lease expired during the outage, the job will run again",
                    extra={"job_id": h.job.id, "queue": queue},
                )
                self.forget(h)
            if keep:
                self.acks[queue] = keep + self.acks.get(queue, [])
            return False
        finally:
            self.reserved -= claim_next
        self.state.succeeded(room=False)  # complete runs at maxmemory too
        for (ack, h), ok in zip(items, flags, strict=True):
            if not ok:
                log.warning("ack refused: stale token (the job was taken back)", extra={"job_id": ack.id})
            self.forget(h)
        self.accept(batch.jobs, sent_at)
        return True

    def result_text(self, value: object) -> str:
        return dumps(value)
