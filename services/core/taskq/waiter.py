"""An idle worker's wait for work: it blocks in Redis, never polls, and wakes with its jobs in hand.

BZPOPMIN on a queue's marker set: an enqueue adds the marker and Redis wakes the longest-waiting
client at once. For one queue the claim is pipelined behind the pop on the same connection; Redis
runs it the moment the client wakes (a connection's commands run in order), so the jobs come back
with the wake-up in one round trip. The connection is a ``Wire`` of its own: a blocked pop holds it,
and the wake-up is the path where client CPU is latency.

Stopping: ``interrupt`` ends a blocked wait from the outside (CLIENT UNBLOCK), so a worker never has
to cancel a wait whose claim may already be running in Redis; the claim's jobs come back as usual and
the worker hands them back (no attempt lost).
"""

from __future__ import annotations

from collections.abc import Sequence

from taskq.commands.base import text
from taskq.commands.executor import WireExecutor
from taskq.errors import redis_errors
from taskq.queue import Taskq
from taskq.results import ClaimBatch
from taskq.settings import CoreSettings
from taskq.wire import Wire

#: Seconds a blocked wait may overrun its own timeout before the connection counts as dead.
GRACE = 2.0


class Waiter:
    def __init__(self, taskq: Taskq, wire: Wire) -> None:
        self.taskq = taskq
        self.wire = wire
        self.executor = WireExecutor(wire)

    @classmethod
    def from_settings(
        cls, taskq: Taskq, settings: CoreSettings, *, client_name: str = "taskq-waiter"
    ) -> Waiter:
        # Each wait names its own bound (its timeout plus GRACE): a blocked pop outlives any
        # command timeout.
        return cls(taskq, Wire.from_settings(settings, client_name=client_name))

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> str | None:
        """Block until a job may be waiting in one of ``queues`` (or ``timeout`` seconds pass).
        Returns the queue woken for, None on timeout."""
        markers = {self.taskq.queue_keys(q).marker: q for q in queues}
        wait = max(0.001, timeout)
        got = await self.executor.blocking(("BZPOPMIN", *markers, f"{wait:.3f}"), wait + GRACE)
        return None if got is None else markers[text(got[0])]

    async def wait_and_claim(self, queue: str, worker_id: str, n: int, timeout: float) -> ClaimBatch:
        """Block until work may be waiting in ``queue`` (or ``timeout`` passes), then claim up to n,
        in one round trip. An empty batch means the wait timed out or another worker was faster.

        The batch is ``drained`` when it took fewer than n jobs afresh: the claim emptied the queue's
        ready jobs then (a claim that stops at n because it dropped vanished hashes re-arms the
        marker), so the next wait can start without a claim before it. A replayed claim hands back
        what a lost call took and claims nothing new, so it says nothing of the queue."""
        commands = self.taskq.commands[queue]
        wait = max(0.001, timeout)
        replay = self.taskq.nonces.in_doubt(queue)
        nonce = self.taskq.nonces.take(queue)
        claim = commands.claim(worker_id, n, nonce)
        try:
            _, batch = await self.executor.behind(
                ("BZPOPMIN", commands.keys.marker, f"{wait:.3f}"), claim, wait + GRACE
            )
        except BaseException:
            # The deadline passed (or the connection dropped) after the pop: the claim may have run.
            # The next claim of this queue asks for its jobs (taskq.claims).
            self.taskq.nonces.doubt(queue, nonce)
            raise
        if replay or len(batch.jobs) >= n:
            return batch
        return ClaimBatch(batch.jobs, batch.next_due_ms, drained=True)

    async def interrupt(self) -> bool:
        """End a wait blocked right now, as if it timed out (a pipelined claim still runs and returns
        its jobs). Sent on the Taskq's own connection. True when a blocked wait was ended."""
        client_id = self.wire.client_id
        if client_id is None:
            return False
        with redis_errors():
            return bool(await self.taskq.redis.client_unblock(client_id))

    async def aclose(self) -> None:
        await self.wire.aclose()
