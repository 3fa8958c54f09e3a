"""A queue purge is a state change like any other: each purged job gets a `purged` event in its
queue's stream, so `GET /jobs/{id}/events` ends and the dashboard drops it instead of waiting forever."""

from __future__ import annotations

from redis.asyncio import Redis

from taskq import Taskq
from taskq.controls import purge
from taskq.job_events import read_after


async def test_each_purged_job_gets_a_purged_event(taskq: Taskq, redis: Redis, queue_name: str) -> None:
    jobs = [(await taskq.enqueue("debug.noop", queue=queue_name)).id for _ in range(3)]
    before = await read_after(redis, taskq.queue_keys(queue_name), "0-0")
    assert await purge(taskq, queue_name, batch=2) == 3
    events = await read_after(redis, taskq.queue_keys(queue_name), before[-1].id)
    assert sorted((e.job_id, e.type, e.status) for e in events) == sorted(
        (job, "purged", "purged") for job in jobs
    )
