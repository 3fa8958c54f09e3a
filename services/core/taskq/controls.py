"""Queue controls: pause and resume, purge the pending jobs, remove an empty and idle queue.

A facade over the admin commands (``pause.lua``, ``purge.lua``, ``remove_queue.lua``) beside
``Taskq``, which it takes as its first argument (queue.py is at its size limit). The pause itself is
enforced by the claim scripts, not here: a paused queue's key makes every claim path hand out
nothing new, so no worker can race it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taskq.commands import plain
from taskq.errors import TaskqError
from taskq.models import QueueStats
from taskq.queue import Taskq
from taskq.workers import live_workers

#: Pending jobs one purge script call deletes at most (each call is atomic and its time bounded:
#: Redis runs nothing else meanwhile). A bigger queue takes several calls.
PURGE_BATCH = 500


class QueueNotIdle(TaskqError):
    """The queue still holds jobs or a live worker serves it: it was not removed."""

    def __init__(self, queue: str, reason: str) -> None:
        super().__init__(f"queue {queue!r} cannot be removed: {reason}")
        self.queue, self.reason = queue, reason


@dataclass(frozen=True, slots=True)
class QueueState:
    stats: QueueStats
    paused: bool


async def is_known(taskq: Taskq, queue: str) -> bool:
    """Declared (QUEUES) or in the registry (it has had a job)."""
    return queue in (taskq.declared_queues() or ()) or bool(
        await taskq.executor.run(plain("SISMEMBER", taskq.keys.queues, queue))
    )


async def set_paused(taskq: Taskq, queue: str, paused: bool) -> bool:
    """Pause or resume ``queue``; True when that changed its state (both are idempotent). Resuming
    wakes an idle worker at once."""
    return await taskq.executor.run(taskq.commands[queue].pause(paused))


async def states(taskq: Taskq, queues: Sequence[str]) -> list[QueueState]:
    """Each queue's stats and whether it is paused, in one round trip."""
    if not queues:
        return []
    calls = [taskq.commands[q].stats() for q in queues]
    calls += [plain("EXISTS", taskq.queue_keys(q).paused) for q in queues]
    replies = await taskq.executor.run_many(calls)
    n = len(queues)
    return [QueueState(stats, bool(flag)) for stats, flag in zip(replies[:n], replies[n:], strict=True)]


async def purge(taskq: Taskq, queue: str, *, batch: int = PURGE_BATCH) -> int:
    """Delete the pending jobs of ``queue`` (not scheduled, not running ones); how many were deleted.

    Batches of ``batch`` until a batch comes back short or as many as were pending at the first
    call are gone: jobs enqueued while it runs may be purged too, but a producer faster than the
    purge cannot keep it going forever."""
    command = taskq.commands[queue].purge
    purged, left = await taskq.executor.run(command(batch))
    target = purged + left
    while left > 0 and purged < target:
        n, left = await taskq.executor.run(command(min(batch, target - purged)))
        if n == 0:
            break
        purged += n
    return purged


async def remove(taskq: Taskq, queue: str) -> None:
    """Remove ``queue`` from the registry and delete its keys (counters included). Raises
    ``QueueNotIdle`` when it holds a pending, scheduled, running or dead job, or a live worker
    serves it; nothing is removed then.

    The registry entry goes first and comes back if the queue turns out not to be empty, so an
    enqueue racing the removal is never left in a queue missing from the registry by this call. (A
    producer process that registered the queue before remembers having done so and does not add it
    again: with QUEUES=* its later jobs there are listed once it restarts. Declared queues are
    listed and looked up through QUEUES whatever the registry holds.)"""
    if any(queue in w.queues for w in await live_workers(taskq)):
        raise QueueNotIdle(queue, "a live worker serves it")
    removed = await taskq.executor.run(plain("SREM", taskq.keys.queues, queue))
    held = await taskq.executor.run(taskq.commands[queue].remove_queue())
    if held is not None:
        if removed:
            await taskq.register_queues([queue])
        pending, scheduled, running, dead = held
        raise QueueNotIdle(
            queue, f"it holds {pending} pending, {scheduled} scheduled, {running} running, {dead} dead job(s)"
        )
    # This process registers it again on its next enqueue there.
    taskq.planner.known_queues.discard(queue)
