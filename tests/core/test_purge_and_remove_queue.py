"""Purging a queue deletes its pending jobs (hashes, idempotency records) in bounded batches and
counts them, leaving scheduled and running jobs alone; removing a queue needs it empty and idle and
takes its registry entry and keys with it."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from taskq import Taskq
from taskq.controls import QueueNotIdle, purge, remove, set_paused
from taskq.workers import WorkerBeat, beat


async def test_purge_deletes_pending_jobs_in_batches_and_leaves_the_rest(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    running = await taskq.enqueue("debug.noop", queue=queue_name)
    [held] = (await taskq.claim(queue_name, "w", 1)).jobs
    assert held.id == running.id
    later = await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=60_000)
    pending = [(await taskq.enqueue("debug.noop", queue=queue_name)).id for _ in range(7)]

    assert await purge(taskq, queue_name, batch=3) == 7  # three script calls: 3 + 3 + 1

    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.scheduled, stats.running) == (0, 1, 1)
    assert stats.counters["purged"] == 7
    for job_id in pending:
        assert await taskq.get_job(job_id, queue_name) is None
    assert await taskq.get_job(later.id, queue_name) is not None
    assert await taskq.get_job(running.id, queue_name) is not None
    assert await purge(taskq, queue_name) == 0  # nothing left to purge: a no-op


async def test_a_purged_jobs_idempotency_key_names_nothing_any_more(taskq: Taskq, queue_name: str) -> None:
    first = await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k1")
    assert await purge(taskq, queue_name) == 1
    again = await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k1")
    assert again.created
    assert again.id != first.id


async def test_removing_a_queue_that_holds_jobs_is_refused(taskq: Taskq, queue_name: str) -> None:
    await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=60_000)
    with pytest.raises(QueueNotIdle, match="1 scheduled"):
        await remove(taskq, queue_name)
    assert queue_name in await taskq.queues()  # the registry entry came back
    assert (await taskq.stats(queue_name)).scheduled == 1


async def test_removing_an_empty_queue_drops_its_entry_and_keys(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    await taskq.enqueue("debug.noop", queue=queue_name)
    await purge(taskq, queue_name)
    await set_paused(taskq, queue_name, True)
    qk = taskq.queue_keys(queue_name)
    assert await redis.exists(qk.stats, qk.paused) == 2

    await remove(taskq, queue_name)

    assert queue_name not in await taskq.queues()
    assert await redis.exists(qk.stats, qk.paused, qk.marker, qk.token) == 0
    # An enqueue in this process registers it again (it forgot it had).
    await taskq.enqueue("debug.noop", queue=queue_name)
    assert queue_name in await taskq.queues()


async def test_removing_a_queue_a_live_worker_serves_is_refused(taskq: Taskq, queue_name: str) -> None:
    await taskq.register_queues([queue_name])
    await beat(taskq, WorkerBeat("w1", "host", 1, 0, 1, (queue_name,), ()), ttl_ms=60_000)
    with pytest.raises(QueueNotIdle, match="live worker"):
        await remove(taskq, queue_name)
    assert queue_name in await taskq.queues()
