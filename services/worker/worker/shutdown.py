"""Graceful stop: what happens to the jobs in hand after SIGTERM/SIGINT (see ``Worker.run``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from taskq import RedisUnavailable
from worker.connection import REDIS_ERRORS, Backoff

if TYPE_CHECKING:
    from worker.runner import Held, Worker

log = logging.getLogger("taskq.worker")

#: How long a stopped job whose code cannot be interrupted (a thread) may keep running before the
#: worker gives up on it and exits. Compose's stop_grace_period leaves this much above the grace.
STOP_BOUND_SECONDS = 5.0
#: ``Worker.run``'s exit code when handler threads still run: the process must end without waiting.
EXIT_JOBS_LEFT_RUNNING = 3


async def finish_in_hand(w: Worker) -> None:
    """Prefetched jobs go back at once; running ones get the grace (a second signal ends it); what is
    still running then is stopped and handed back, without using an attempt."""
    waiting = [h for h in w.ready]
    w.ready.clear()
    await hand_back(w, waiting)
    tasks = {h.task for h in w.held.values() if h.task is not None and not h.task.done()}
    if tasks:
        hard = asyncio.create_task(w.hard_stop.wait())
        await _wait_tasks(w, tasks, hard)
        hard.cancel()
    late = [h for h in w.held.values() if h.task is not None and not h.task.done()]
    for h in late:
        w.stop_job(h, "shutdown", force=True)
    if late:
        hard = asyncio.create_task(w.hard_stop.wait())
        await asyncio.wait([*(h.task for h in late if h.task), hard], timeout=STOP_BOUND_SECONDS)
        hard.cancel()
        # Only jobs whose code has stopped go back: a thread still running (or one that finished
        # and recorded its own outcome) must not be handed to another worker. What still runs is
        # left to its lease, which lapses when this process exits (``Worker.run``).
        stopped = [h for h in late if h.give_back]
        log.warning("grace over: handing back unfinished jobs", extra={"jobs": [h.job.id for h in stopped]})
        await hand_back(w, stopped)


def thread_stopped(w: Worker, h: Held) -> None:
    """A stop reached a job running in a thread, which cannot be interrupted: stop cancelling it, keep
    its slot and lease until it returns, and if it has not returned ``STOP_BOUND_SECONDS`` later,
    stop the worker (its process exits with the thread in it; the lease lapses, and only then does
    the reaper hand the job to another worker)."""
    h.stop_seen = True
    log.warning(
        "job stopped but its thread cannot be interrupted: waiting for it to return",
        extra={"job_id": h.job.id, "reason": h.stop_reason},
    )
    asyncio.get_running_loop().call_later(STOP_BOUND_SECONDS, _overdue, w, h)


def _overdue(w: Worker, h: Held) -> None:
    if h.task is None or h.task.done() or w.stopping:
        return
    log.error(
        "a stopped job's thread has not returned: stopping this worker, its lease lapses when it exits",
        extra={"job_id": h.job.id, "reason": h.stop_reason, "bound_seconds": STOP_BOUND_SECONDS},
    )
    w.request_stop()


async def _wait_tasks(w: Worker, tasks: set[asyncio.Task[None]], hard: asyncio.Task[bool]) -> None:
    deadline = time.monotonic() + w.settings.worker_shutdown_grace
    pending: set[asyncio.Task[None]] = set(tasks)
    while pending and not hard.done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.wait([*pending, hard], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        pending = {t for t in pending if not t.done()}


async def hand_back(w: Worker, items: list[Held]) -> None:
    """Release jobs to their queues (no attempt used); retried through an outage while leases hold."""
    by_queue: dict[str, list[Held]] = {}
    for h in items:
        by_queue.setdefault(h.job.queue, []).append(h)
    for queue, group in by_queue.items():
        pairs = [(h.job.id, h.job.token) for h in group]
        backoff = Backoff()
        while True:
            try:
                released = await w.taskq.release(queue, pairs)
                log.info("handed back", extra={"queue": queue, "jobs": len(pairs), "released": released})
                break
            except REDIS_ERRORS as exc:
                w.state.failed("release", exc)
                if isinstance(exc, RedisUnavailable):
                    await w.reset_connections()
                if w.hard_stop.is_set() or not any(w.lease_alive(h) for h in group):
                    log.warning("could not hand back: the jobs return when their leases expire")
                    break
                await w.pause(backoff.next_delay())
        for h in group:
            w.forget(h)


async def drain_acks(w: Worker) -> None:
    """Wait for every finished job's ack to reach Redis (bounded: acks are dropped once leases expire)."""
    while w.acks or w.flushing:
        w.idle.clear()
        waiter = asyncio.create_task(w.idle.wait())
        hard = asyncio.create_task(w.hard_stop.wait())
        bound = w.settings.lease_seconds
        await asyncio.wait([waiter, hard], timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        hard.cancel()
        if w.hard_stop.is_set():
            return
