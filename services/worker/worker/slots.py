"""The worker's capacity: the jobs it holds, which of them run, and how many slots are free or promised.

A job is "held" (counted against capacity and leased) from its claim until its outcome is recorded in
Redis: an ack, a failure, a hand-back, or until its lease is known lost. Held jobs beyond the
concurrency wait in ``ready`` (prefetched). Claims in flight reserve the slots they may fill, so two
claims never fill the same slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections import deque
from collections.abc import Container, Iterator
from dataclasses import dataclass, field

from taskq import ClaimedJob
from worker.lease import Leases


class StopReason(enum.StrEnum):
    """Why the worker itself stopped a job it runs."""

    CANCEL = "cancel"  # its cancellation was requested: record it cancelled
    LOST = "lost"  # its lease was lost: another worker may run it, record nothing
    TIMEOUT = "timeout"  # it ran past its timeout: record a failure
    SHUTDOWN = "shutdown"  # the shutdown grace ended with it running: hand it back


@dataclass(slots=True, eq=False)
class Held:
    job: ClaimedJob
    task: asyncio.Task[None] | None = None
    stop_reason: StopReason | None = None
    stop_seen: bool = False  # the job runner caught the cancellation
    give_back: bool = False  # stopped at the end of the grace, its code ended: release it
    started: float = field(default_factory=time.monotonic)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


class Slots:
    def __init__(self, concurrency: int, prefetch: int) -> None:
        self.concurrency = concurrency
        self.capacity = concurrency + prefetch
        self.leases = Leases()
        self.held: dict[str, Held] = {}
        self.ready: deque[Held] = deque()  # held, not started (prefetched, or no slot free yet)
        self.running = 0
        self.reserved = 0  # slots promised to claims in flight
        #: Claims the picker gave to a queue the ack flusher could not piggyback on: the next claim's.
        self.owed: dict[str, int] = {}
        self.space = asyncio.Event()  # set whenever a slot may have come free

    def free(self) -> int:
        return self.capacity - len(self.held) - self.reserved

    @contextlib.contextmanager
    def reserve(self, n: int) -> Iterator[None]:
        self.reserved += n
        try:
            yield
        finally:
            self.reserved -= n

    def lease_alive(self, h: Held) -> bool:
        lease = self.leases.get(h.job.id)
        return lease is not None and time.monotonic() < lease.until

    def hold(self, job: ClaimedJob) -> tuple[Held, Held | None]:
        """Hold a claimed job; also returns the run it replaces, if this worker already held it (taken
        back, reaped or handed back, and claimed again by us before a renewal told us so)."""
        h = Held(job)
        old = self.held.get(job.id)
        if old is not None:
            self.unready(old)
        self.held[job.id] = h
        return h, old

    def unready(self, h: Held) -> None:
        with contextlib.suppress(ValueError):
            self.ready.remove(h)

    def take_ready(self) -> list[Held]:
        waiting = list(self.ready)
        self.ready.clear()
        return waiting

    def in_progress(self) -> list[Held]:
        return [h for h in self.held.values() if h.running]

    def forget(self, h: Held) -> None:
        """The job's outcome is settled (or no longer ours): free its slot."""
        if self.held.get(h.job.id) is h:  # not a newer claim of the same job
            del self.held[h.job.id]
            self.leases.remove(h.job.id)
            self.space.set()

    def owe(self, alloc: dict[str, int], piggybacked: Container[str]) -> None:
        """Claims allocated to queues a flush has no ack for (so cannot claim on): the next claim's."""
        for queue, n in alloc.items():
            if queue not in piggybacked:
                self.owed[queue] = self.owed.get(queue, 0) + n

    def take_owed(self) -> dict[str, int]:
        owed, self.owed = self.owed, {}
        return owed
