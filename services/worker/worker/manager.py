"""The worker: a manager of job runners. It claims jobs in batches (``claims``), runs up to
``WORKER_CONCURRENCY`` at once (``job_runner``, one task per job), acks them in batches (``acks``), keeps
their leases (``lease``), and stops gracefully; it owns the slots (``slots``) and every job's outcome.

Round trips: in steady state the ack flusher sends every ack finished since its last flush in one
``complete`` call that also claims the freed slots' next jobs, so a busy worker needs about one round
trip per batch of jobs. Leases are renewed by the lease thread.

Graceful stop (SIGTERM/SIGINT): no new claims; prefetched jobs go back at once; running ones get the
grace (a second signal ends it); what still runs then is stopped and handed back, without using an
attempt; finished jobs' acks are drained; claims made meanwhile go back too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from taskq import Ack, ClaimedJob, DeadReason, JobError, RedisUnavailable, Taskq, TaskRegistry, Waiter
from taskq.errors import BadMessage
from taskq.tasks import Handler
from taskq.workers import deregister
from worker.acks import AckFlusher
from worker.claims import Claimer
from worker.connection import LAPSED, REDIS_ERRORS, Outage, RedisState, drop_idle_connections
from worker.cron import CronScheduler
from worker.deadlines import Deadlines
from worker.job_runner import JobRunner
from worker.lease import Identity, LeaseKeeper
from worker.queues import WeightedPicker
from worker.settings import WorkerSettings
from worker.slots import Held, Slots, StopReason

log = logging.getLogger("taskq.worker")

#: How long a stopped job whose code cannot be interrupted (a thread) may keep running before the
#: worker gives up on it and exits. Compose's stop_grace_period leaves this much above the grace.
STOP_BOUND_SECONDS = 5.0
#: ``Worker.run``'s exit code when handler threads still run: the process must end without waiting.
EXIT_JOBS_LEFT_RUNNING = 3


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
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.settings, self.taskq, self.waiter, self.identity = settings, taskq, waiter, identity
        self.registry = registry
        self.id = identity.id
        self.burst = burst
        self.slots = Slots(settings.worker_concurrency, settings.worker_prefetch)
        self.state = RedisState()
        self.hard_stop = asyncio.Event()
        self._stop = asyncio.Event()
        self.stopping = False  # past the run loop: start nothing new
        self.outage = Outage(self.state, self.reset_connections, self.hard_stop)
        self.pool = ThreadPoolExecutor(max_workers=self.slots.concurrency, thread_name_prefix="taskq-job")
        self.deadlines: Deadlines[Held] = Deadlines(asyncio.get_running_loop(), self._on_timeout)
        self.jobs = JobRunner(self, registry, settings, taskq, self.pool, self.deadlines, handlers)
        picker = WeightedPicker(settings.queue_weights())
        self.flusher = AckFlusher(taskq, self.id, self.slots, picker, self.outage, self.accept)
        self.claimer = Claimer(
            settings, taskq, waiter, self.id, self.slots, self.flusher, self.state, self.outage, self.accept
        )
        self.keeper: LeaseKeeper | None = None

    # ---------------------------------------------------------------- lifecycle

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info(
                "stopping: no new claims; jobs in hand may finish within the grace",
                extra={"in_hand": len(self.slots.held), "grace_seconds": self.settings.worker_shutdown_grace},
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
            self.settings, self.identity, self.slots.leases, self.state, loop, self._on_lost, self._on_cancel
        )
        self.keeper.start_and_wait()
        log.info(
            "worker started",
            extra={"worker_id": self.id, "queues": list(self.claimer.queues),
                   "concurrency": self.slots.concurrency, "prefetch": self.settings.worker_prefetch,
                   "redis": self.settings.redacted_redis_url()},
        )  # fmt: skip
        fetch = asyncio.create_task(self.claimer.run(self.burst, self._stop), name="fetch")
        flush = asyncio.create_task(self.flusher.run(), name="flush")
        cron = CronScheduler(self.settings, self.taskq, self.state)
        cron_task = asyncio.create_task(cron.run(), name="cron") if cron.jobs else None
        try:
            await self._stop.wait()
            self.stopping = True
            self.flusher.claiming = False
            if cron_task is not None:
                cron_task.cancel()
            await self.claimer.end(fetch, self.hard_stop)
            await self.finish_in_hand()
            await self.flusher.drain(self.hard_stop, self.settings.lease_seconds)
            # A claim whose reply was lost took jobs this worker never saw: fetch them now, so they go
            # back with the rest instead of waiting out their leases (an attempt lost each).
            recovered_at = time.monotonic()
            with contextlib.suppress(RedisUnavailable):
                self.accept(await self.taskq.recover_claims(self.id), recovered_at)
            # A flush in flight when the signal came may have claimed more: they go straight back.
            await self.hand_back(self.slots.take_ready())
        finally:
            # Background loops end on flags as well as on cancel(): a cancellation that lands as a
            # redis call or a timeout completes can be absorbed, and stopping must not hang on it.
            self.stopping = self.claimer.stopping = True
            self.flusher.close()
            self.slots.space.set()
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
        if self.slots.running:
            # Handler threads that did not return even after the bound: nothing can stop them but
            # the end of this process, which the caller must bring about without waiting for them
            # (``serve`` does). Their leases lapse then, and the reaper hands them on.
            log.error(
                "exiting with jobs still running in threads: left to their leases",
                extra={"worker_id": self.id, "jobs": self.slots.running},
            )
            return EXIT_JOBS_LEFT_RUNNING
        log.info("worker stopped", extra={"worker_id": self.id})
        return 0

    async def reset_connections(self) -> None:
        await drop_idle_connections(self.taskq.redis)
        self.waiter.wire.close()

    # ---------------------------------------------------------------- jobs in hand

    def accept(self, jobs: list[ClaimedJob], sent_at: float) -> None:
        if not jobs:
            return
        slots = self.slots
        slots.leases.add_many(jobs, sent_at + self.settings.lease_seconds)
        for job in jobs:
            h, old = slots.hold(job)
            if old is not None:
                # The old run is stale, stop it; the new claim is the one that counts.
                self.stop_job(old, StopReason.LOST, force=True)
            if slots.running < slots.concurrency and not self.stopping:
                self._start(h)
            else:
                slots.ready.append(h)

    def _start(self, h: Held) -> None:
        self.slots.running += 1
        h.started = time.monotonic()
        h.task = asyncio.create_task(self.jobs.run(h))
        h.task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        slots = self.slots
        slots.running -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("job runner crashed", exc_info=task.exception())
        while slots.ready and slots.running < slots.concurrency and not self.stopping:
            self._start(slots.ready.popleft())

    # The job runner's outcomes (``worker.job_runner.Outcomes``).

    def ack(self, h: Held, ack: Ack) -> None:
        self.flusher.add(h, ack)

    async def fail(self, h: Held, error: JobError, *, retryable: bool, reason: DeadReason) -> str:
        """Record a failed execution; retried through an outage while the lease holds."""
        q, job = self.taskq, h.job
        backoff = self._backoff_of(job) if retryable else None

        async def record() -> str:
            status = await q.fail(
                job.queue,
                job.id,
                job.token,
                error,
                retryable=retryable,
                reason=reason.value,
                attempts=job.attempts,
                backoff=backoff,
            )
            return "stale" if status is None else status.value

        # fail runs at maxmemory too: success says Redis answers, not that it has room
        status = await self.outage.retry_while_leased(
            "fail", record, lambda: self.slots.lease_alive(h), room=False
        )
        if status is LAPSED:
            log.warning("failure not recorded: the lease expired", extra={"job_id": job.id})
            status = "dropped"
        self.slots.forget(h)
        return status

    def _backoff_of(self, job: ClaimedJob) -> tuple[float, float] | None:
        """The task's own retry backoff (None: the deployment's). A failure is off the hot path, so
        the payload is read again here rather than carried through every outcome."""
        try:
            name = job.payload().task
        except BadMessage:
            return None
        return self.registry.get(name).retry_backoff if name in self.registry else None

    def forget(self, h: Held) -> None:
        self.slots.forget(h)

    def thread_stopped(self, h: Held) -> None:
        """A stop reached a job running in a thread, which cannot be interrupted: stop cancelling it, keep
        its slot and lease until it returns, and if it has not returned ``STOP_BOUND_SECONDS`` later,
        stop the worker (its process exits with the thread in it; the lease lapses, and only then does
        the reaper hand the job to another worker)."""
        h.stop_seen = True
        log.warning(
            "job stopped but its thread cannot be interrupted: waiting for it to return",
            extra={"job_id": h.job.id, "reason": h.stop_reason},
        )
        asyncio.get_running_loop().call_later(STOP_BOUND_SECONDS, self._overdue, h)

    def _overdue(self, h: Held) -> None:
        if not h.running or self.stopping:
            return
        log.error(
            "a stopped job's thread has not returned: stopping this worker, its lease lapses when it exits",
            extra={"job_id": h.job.id, "reason": h.stop_reason, "bound_seconds": STOP_BOUND_SECONDS},
        )
        self.request_stop()

    # ---------------------------------------------------------------- stopping one job

    def stop_job(self, h: Held, reason: StopReason, *, force: bool = False) -> None:
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
        h = self.slots.held.get(job_id)
        if h is None or h.job.token != token:
            return  # not this run's lease: the job was taken back and claimed again since
        if h.task is not None and h.task.done():
            return  # already finished: its ack raced the renewal, and the ack decides
        log.warning("lease lost: another worker may run this job; stopping it here", extra={"job_id": job_id})
        if h.task is not None:
            self.stop_job(h, StopReason.LOST, force=True)
        else:
            self.slots.unready(h)
            self.slots.forget(h)

    def _on_timeout(self, h: Held) -> None:
        if h.running and h.stop_reason is None:
            self.stop_job(h, StopReason.TIMEOUT)

    def _on_cancel(self, job_id: str, token: int) -> None:
        h = self.slots.held.get(job_id)
        if h is None or h.job.token != token or h.stop_reason is not None:
            return
        if h.task is not None:
            self.stop_job(h, StopReason.CANCEL)
        else:
            h.stop_reason = StopReason.CANCEL
            self.slots.unready(h)
            self.ack(h, Ack(h.job.id, h.job.token, cancelled=True))

    # ---------------------------------------------------------------- graceful stop

    async def finish_in_hand(self) -> None:
        """Prefetched jobs go back at once; running ones get the grace (a second signal ends it); what is
        still running then is stopped and handed back, without using an attempt."""
        await self.hand_back(self.slots.take_ready())
        if running := self.slots.in_progress():
            await self._wait_for(running, self.settings.worker_shutdown_grace, hard_stop_ends=True)
        late = self.slots.in_progress()
        for h in late:
            self.stop_job(h, StopReason.SHUTDOWN, force=True)
        if late:
            # A hard stop does not cut this short: a job's code must have stopped before it goes back.
            await self._wait_for(late, STOP_BOUND_SECONDS, hard_stop_ends=False)
            # Only jobs whose code has stopped go back: a thread still running (or one that finished
            # and recorded its own outcome) must not be handed to another worker. What still runs is
            # left to its lease, which lapses when this process exits (``run``).
            stopped = [h for h in late if h.give_back]
            log.warning(
                "grace over: handing back unfinished jobs", extra={"jobs": [h.job.id for h in stopped]}
            )
            await self.hand_back(stopped)

    async def _wait_for(self, jobs: list[Held], seconds: float, *, hard_stop_ends: bool) -> None:
        """Wait until these jobs' tasks end or ``seconds`` pass (or a hard stop, if it ``hard_stop_ends``)."""
        deadline = time.monotonic() + seconds
        pending = {h.task for h in jobs if h.task is not None}
        hard = asyncio.create_task(self.hard_stop.wait() if hard_stop_ends else asyncio.Event().wait())
        try:
            while pending and not hard.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                await asyncio.wait([*pending, hard], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                pending = {t for t in pending if not t.done()}
        finally:
            hard.cancel()

    async def hand_back(self, items: list[Held]) -> None:
        """Release jobs to their queues (no attempt used); retried through an outage while leases hold."""
        by_queue: dict[str, list[Held]] = {}
        for h in items:
            by_queue.setdefault(h.job.queue, []).append(h)
        for queue, group in by_queue.items():
            pairs = [(h.job.id, h.job.token) for h in group]
            release = functools.partial(self.taskq.release, queue, pairs)
            leased = functools.partial(self._any_leased, group)
            released = await self.outage.retry_while_leased("release", release, leased, room=False)
            if released is LAPSED:
                log.warning("could not hand back: the jobs return when their leases expire")
            else:
                log.info("handed back", extra={"queue": queue, "jobs": len(pairs), "released": released})
            for h in group:
                self.slots.forget(h)

    def _any_leased(self, jobs: list[Held]) -> bool:
        return any(self.slots.lease_alive(h) for h in jobs)
