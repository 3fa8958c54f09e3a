"""Core refuses, before any I/O, a job for a queue outside the declared set, on every enqueue path
(one job, a mixed batch, a big streamed batch, the blocking client), and finds a job by id with one
lookup per declared queue."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from taskq import (
    CoreSettings,
    EnqueueRequest,
    QueueConfig,
    QueueNotDeclared,
    SyncTaskq,
    Taskq,
    Wire,
    connect_sync,
)
from taskq.localserver import LocalRedis


@pytest.fixture
def declared(config: QueueConfig) -> QueueConfig:
    # 'default', the registered tasks' own queues, and 'emails'.
    return QueueConfig.of(taskq_prefix=config.prefix, queues="emails")


async def _untouched(taskq: Taskq, queue: str) -> None:
    qk = taskq.keys.queue(queue)
    assert await taskq.redis.exists(qk.pending, qk.scheduled, qk.stats, qk.marker) == 0
    assert queue not in await taskq.queues()


async def test_every_async_enqueue_path_refuses_an_undeclared_queue(
    redis: Redis, redis_server: LocalRedis, declared: QueueConfig
) -> None:
    wire = Wire.from_settings(CoreSettings(redis_url=redis_server.url, environment="test"))
    for taskq in (Taskq(redis, declared), Taskq(redis, declared, wire=wire)):
        with pytest.raises(QueueNotDeclared, match="accepted: default, emails"):
            await taskq.enqueue("debug.noop", queue="ghost")
        mixed = [EnqueueRequest("debug.noop", {}, queue="emails"), EnqueueRequest("debug.noop", {}, "ghost")]
        with pytest.raises(QueueNotDeclared):
            await taskq.enqueue_many(mixed)
        with pytest.raises(QueueNotDeclared):  # more than a stream chunk: the streamed path
            await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue="ghost")] * 300)
        await _untouched(taskq, "ghost")
        assert (await taskq.stats("emails")).counters.get("enqueued", 0) == 0
    await wire.aclose()


async def test_the_blocking_client_refuses_an_undeclared_queue(
    redis: Redis, redis_server: LocalRedis, declared: QueueConfig
) -> None:
    sync = SyncTaskq(connect_sync(CoreSettings(redis_url=redis_server.url, environment="test")), declared)
    with pytest.raises(QueueNotDeclared):
        sync.enqueue("debug.noop", queue="ghost")
    await _untouched(Taskq(redis, declared), "ghost")
    job_id = sync.enqueue("debug.noop", queue="emails").id
    job = sync.get_job(job_id)
    assert job is not None
    assert job.queue == "emails"
