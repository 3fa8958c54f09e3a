"""The ack flusher: sends finished jobs' acks in batches, each batch also claiming the freed slots' next
jobs (one ``complete`` call per queue: one round trip per batch of jobs in steady state).

Natural batching, no timer: while a flush is in flight, acks accumulate for the next one. An ack that
cannot reach Redis is retried (``Outage.retry_while_leased``) for as long as its job's lease holds;
once the lease is gone the result is dropped, and the job runs again elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from taskq import Ack, ClaimedJob, Taskq
from worker.connection import LAPSED, Outage
from worker.queues import WeightedPicker
from worker.slots import Held, Slots

log = logging.getLogger("taskq.worker")

#: Ack batches on the wire at once. Two lets Python run one batch while Redis answers the other; more
#: only splits the same acks into smaller batches.
FLUSHES_IN_FLIGHT = 2

Batch = dict[str, list[tuple[Ack, Held]]]


class AckFlusher:
    def __init__(
        self,
        taskq: Taskq,
        worker_id: str,
        slots: Slots,
        picker: WeightedPicker,
        outage: Outage,
        accept: Callable[[list[ClaimedJob], float], None],
    ) -> None:
        self.taskq, self.worker_id, self.slots, self.picker, self.outage = (
            taskq,
            worker_id,
            slots,
            picker,
            outage,
        )
        self.accept = accept
        self.acks: Batch = {}
        self.flushing = 0  # flushes in flight
        self.claiming = True  # False once the worker stops: flushes claim nothing more
        self.closing = False  # the loop exits once nothing is left to flush
        self.idle = asyncio.Event()  # no acks pending nor in flight
        self._ready = asyncio.Event()
        self._flushes: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        """Acks wait or fly: the flusher refills the slots they free in its own round trip."""
        return bool(self.acks) or self.flushing > 0

    def add(self, h: Held, ack: Ack) -> None:
        self.acks.setdefault(h.job.queue, []).append((ack, h))
        self._ready.set()

    def close(self) -> None:
        self.closing = True
        self._ready.set()

    async def run(self) -> None:
        """Send the acks gathered since the last flush, up to ``FLUSHES_IN_FLIGHT`` at a time: while one
        batch's round trip is out, the jobs claimed by the previous one run (Python and Redis overlap)."""
        while True:
            if not self.acks or self.flushing >= FLUSHES_IN_FLIGHT:
                if not self.acks and not self.flushing:
                    self.idle.set()
                    if self.closing:
                        return
                self._ready.clear()
                await self._ready.wait()
                continue
            batch, self.acks = self.acks, {}
            self.flushing += 1
            freed = sum(len(items) for items in batch.values())
            alloc = self.picker.allocate(freed) if self.claiming else {}
            self.slots.owe(alloc, batch)
            flush = asyncio.create_task(self._flush_batch(batch, alloc))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def drain(self, hard_stop: asyncio.Event, bound: float) -> None:
        """Wait for every finished job's ack to reach Redis (bounded: acks are dropped once leases
        expire, ``bound`` is the lease) or for a hard stop."""
        while self.busy:
            self.idle.clear()
            idle = asyncio.create_task(self.idle.wait())
            hard = asyncio.create_task(hard_stop.wait())
            await asyncio.wait([idle, hard], timeout=bound, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            hard.cancel()
            if hard_stop.is_set():
                return

    async def _flush_batch(self, batch: Batch, alloc: dict[str, int]) -> None:
        try:
            for queue, items in batch.items():
                await self._flush_queue(queue, items, alloc.get(queue, 0))
        finally:
            self.flushing -= 1
            self._ready.set()
            self.slots.space.set()

    async def _flush_queue(self, queue: str, items: list[tuple[Ack, Held]], claim_next: int) -> None:
        sent_at = 0.0

        async def complete() -> tuple[list[bool], list[ClaimedJob]]:
            nonlocal sent_at
            sent_at = time.monotonic()
            flags, batch = await self.taskq.complete(
                queue, [a for a, _ in items], worker_id=self.worker_id, claim_next=claim_next
            )
            return flags, batch.jobs

        def leased() -> bool:
            """Drop the results whose lease ran out during the outage; retry the rest."""
            keep = [(a, h) for a, h in items if self.slots.lease_alive(h)]
            for _, h in (item for item in items if item not in keep):
                log.warning(
                    "result dropped: the lease expired during the outage, the job will run again",
                    extra={"job_id": h.job.id, "queue": queue},
                )
                self.slots.forget(h)
            items[:] = keep
            return bool(keep)

        with self.slots.reserve(claim_next):
            done = await self.outage.retry_while_leased("ack", complete, leased, room=False)
        if done is LAPSED:  # every lease ran out, or a hard stop: whatever is left goes to its lease
            for _, h in items:
                self.slots.forget(h)
            return
        flags, jobs = done
        for (ack, h), ok in zip(items, flags, strict=True):
            if not ok:
                log.warning("ack refused: stale token (the job was taken back)", extra={"job_id": ack.id})
            self.slots.forget(h)
        self.accept(jobs, sent_at)
