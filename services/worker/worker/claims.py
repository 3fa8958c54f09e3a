"""The claim loop: claims jobs for the slots nobody refilled (the ack flusher refills the slots its acks
free in its own round trip), across the queues by weight; when no work is waiting it blocks in BZPOPMIN,
bounded by the next scheduled job, instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable

from taskq import ClaimBatch, ClaimedJob, Taskq, Waiter
from worker.acks import AckFlusher
from worker.connection import REDIS_ERRORS, Backoff, Outage, RedisState
from worker.settings import WorkerSettings
from worker.slots import Slots

#: A claim that rode a blocking wait ran in Redis at some moment before its reply came back; the
#: local view of its lease starts this much before the reply (the real lease is Redis's, by TIME).
WAKE_MARGIN_SECONDS = 0.25


class InRedis(enum.Enum):
    """What the claim loop awaits in Redis (None: free slots, or a pause after an outage)."""

    CLAIM = "claim"  # a claim: let it finish, it may already have run
    WAIT = "wait"  # blocked waiting for work, maybe with a claim behind: interrupt it


class Claimer:
    def __init__(
        self,
        settings: WorkerSettings,
        taskq: Taskq,
        waiter: Waiter,
        worker_id: str,
        slots: Slots,
        flusher: AckFlusher,
        state: RedisState,
        outage: Outage,
        accept: Callable[[list[ClaimedJob], float], None],
    ) -> None:
        self.settings, self.taskq, self.waiter, self.worker_id = settings, taskq, waiter, worker_id
        self.slots, self.flusher, self.state, self.outage, self.accept = slots, flusher, state, outage, accept
        self.queues = settings.queue_names()
        self.picker = flusher.picker
        self.in_redis: InRedis | None = None
        self.stopping = False

    async def run(self, burst: bool, stop: asyncio.Event) -> None:
        backoff = Backoff()
        slots = self.slots
        #: The last wake-up's claim emptied the queue: (ms to its next due job, monotonic time then).
        drained: tuple[int | None, float] | None = None
        while not self.stopping:
            free = slots.free()
            if free <= 0 or self.flusher.busy:
                slots.space.clear()
                await slots.space.wait()
                continue
            try:
                if drained is not None:
                    # Nothing to claim: any job enqueued since that claim has set the marker, so the
                    # wait below returns at once for it. An idle worker pays one round trip per job.
                    got, due_ms = 0, _still_due(*drained)
                    drained = None
                else:
                    self.in_redis = InRedis.CLAIM
                    try:
                        got, due_ms = await self._claim(free)
                    finally:
                        self.in_redis = None
                if got:
                    backoff.reset()
                    continue
                if burst and not slots.held:
                    stop.set()
                    return
                wait = self.settings.worker_idle_wait_seconds
                if due_ms is not None:
                    wait = min(wait, due_ms / 1000)
                if stop.is_set():
                    return
                self.in_redis = InRedis.WAIT
                try:
                    if len(self.queues) == 1:
                        batch = await self._wait_and_claim(self.queues[0], free, wait)
                        if batch.drained and not burst:  # burst ends on an empty claim: keep it
                            drained = (batch.next_due_ms, time.monotonic())
                    else:
                        await self.waiter.wait_for_work(self.queues, wait)
                finally:
                    self.in_redis = None
                self.state.succeeded()
                backoff.reset()
                # Let the jobs this wake-up brought start before the loop builds and sends its next
                # claim: the tasks ``accept`` created run at the next turn of the event loop, and
                # without this turn they waited behind that claim (~0.35 ms of an idle worker's
                # enqueue->handler latency on this VM, measured with bench/client.py's stamps).
                await asyncio.sleep(0)
            except Exception as exc:
                # Any failure (unreachable, full, a script error, a bug): the loop must live on, or
                # this worker never claims again. Reconnecting only helps when Redis was unreachable.
                await self.outage.failed("claim", exc)
                await self.outage.pause(backoff.next_delay())

    async def _wait_and_claim(self, queue: str, free: int, wait: float) -> ClaimBatch:
        """Idle on one queue: block in Redis with the claim pipelined behind the pop, so the wake-up
        brings the jobs (one round trip). Never cancelled: ``end`` interrupts it instead."""
        sent_at = time.monotonic()
        with self.slots.reserve(free):
            batch = await self.waiter.wait_and_claim(queue, self.worker_id, free, wait)
        self.accept(batch.jobs, max(sent_at, time.monotonic() - WAKE_MARGIN_SECONDS))
        return batch

    async def end(self, fetch: asyncio.Task[None], hard_stop: asyncio.Event) -> None:
        """Stop claiming. A call in Redis that may claim is never cancelled: the claim may already
        have run, and cancelling would strand its jobs until their leases ran out (an attempt lost).
        A claim is let finish; a blocked wait is ended from outside (CLIENT UNBLOCK). Whatever they
        claimed is handed back with the rest. The interrupt repeats until the loop is out, since one
        sent just before the wait began is moot.
        """
        self.stopping = True
        deadline = time.monotonic() + self.settings.worker_idle_wait_seconds + 3
        self.slots.space.set()
        while not fetch.done() and time.monotonic() < deadline and not hard_stop.is_set():
            if self.in_redis is None:
                break  # waiting for slots, or pausing after an outage: nothing to lose by cancelling
            if self.in_redis is InRedis.WAIT:
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
        for queue, n in self.slots.take_owed().items():
            take = min(n, budget)
            if take > 0:
                alloc[queue] = take
                budget -= take
        for queue, n in self.picker.allocate(budget).items():
            alloc[queue] = alloc.get(queue, 0) + n
        order = list(alloc) + [q for q in self.picker.fallback_order() if q not in alloc]
        for queue in order:
            want = alloc.get(queue, 0) or (free - got)
            if want <= 0:
                break
            sent_at = time.monotonic()
            with self.slots.reserve(want):
                batch = await self.taskq.claim(queue, self.worker_id, want)
            self.state.succeeded()
            self.accept(batch.jobs, sent_at)
            got += len(batch.jobs)
            if batch.next_due_ms is not None:
                due.append(batch.next_due_ms)
        return got, min(due) if due else None


def _still_due(due_ms: int | None, at: float) -> int | None:
    """A claim's ms-to-next-due, counted from now instead of from when it was read."""
    if due_ms is None:
        return None
    return max(0, due_ms - int((time.monotonic() - at) * 1000))
