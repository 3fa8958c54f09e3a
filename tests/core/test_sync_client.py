"""SyncTaskq: a blocking-client producer writes the very jobs the asyncio side claims and runs."""

from __future__ import annotations

import pytest

from taskq import (
    CoreSettings,
    EnqueueRequest,
    IdempotencyConflict,
    JobStatus,
    QueueConfig,
    QueueFull,
    SyncTaskq,
    Taskq,
    connect_sync,
)
from taskq.localserver import LocalRedis


@pytest.fixture
def sync_taskq(redis_server: LocalRedis, config: QueueConfig) -> SyncTaskq:
    return SyncTaskq(connect_sync(CoreSettings(redis_url=redis_server.url, environment="test")), config)


async def test_sync_enqueue_is_claimed_by_the_async_side(
    sync_taskq: SyncTaskq, taskq: Taskq, queue_name: str
) -> None:
    enq = sync_taskq.enqueue("send_email", {"recipient_email": "a@example.com"}, queue=queue_name, priority=8)
    assert enq.created
    job = sync_taskq.get_job(enq.id)
    assert job is not None
    assert (job.status, job.priority, job.queue) == (JobStatus.QUEUED, 8, queue_name)
    claimed = (await taskq.claim(queue_name, "w", 5)).jobs
    assert [c.id for c in claimed] == [enq.id]
    assert queue_name in await taskq.queues()


async def test_sync_batches_idempotency_and_admission(
    redis_server: LocalRedis, sync_taskq: SyncTaskq, prefix: str, queue_name: str
) -> None:
    other = f"{queue_name}-b"
    out = sync_taskq.enqueue_many(
        [EnqueueRequest("debug.noop", {}, queue=queue_name), EnqueueRequest("debug.noop", {}, queue=other)]
    )
    assert len({o.id for o in out}) == 2
    first = sync_taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k", fingerprint="a")
    again = sync_taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k", fingerprint="a")
    assert (again.id, again.created) == (first.id, False)
    with pytest.raises(IdempotencyConflict):
        sync_taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k", fingerprint="b")
    small = SyncTaskq(sync_taskq.redis, QueueConfig.of(taskq_prefix=prefix, queue_max_depth=2, queues="*"))
    with pytest.raises(QueueFull):
        small.enqueue("debug.noop", queue=queue_name)
    assert sync_taskq.get_job("01234567-89ab-7def-8123-456789abcdef") is None
