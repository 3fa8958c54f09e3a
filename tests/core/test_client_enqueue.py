"""taskq.Client and taskq.SyncClient: enqueue by the declared task or by its name, the task's defaults,
refusals that write nothing, and the jobs they write are the ones a worker claims."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import Field, ValidationError
from redis.asyncio import Redis

from taskq import (
    Ack,
    Client,
    JobContext,
    JobStatus,
    QueueConfig,
    QueueNotDeclared,
    SyncClient,
    TaskArgs,
    Taskq,
    Tasks,
    UnknownTask,
)
from taskq.localserver import LocalRedis

tasks = Tasks()


class Resize(TaskArgs):
    width: int = Field(gt=0, le=4096)
    label: str = "thumb"


@tasks.task("test.client.resize", queue="images", priority=7, max_attempts=4, timeout_seconds=42)
def resize(args: Resize, ctx: JobContext) -> int:
    return args.width


@tasks.task("test.client.plain")
async def plain(args: Resize, ctx: JobContext) -> None:
    return None


@pytest.fixture
async def client(redis_server: LocalRedis, prefix: str) -> AsyncIterator[Client]:
    # TASKQ_TASKS names this module: its tasks' queues ("images") are declared by loading them.
    async with Client.from_url(
        redis_server.url, environment="test", taskq_prefix=prefix, taskq_tasks=__name__
    ) as c:
        yield c


@pytest.fixture
def sync_client(redis_server: LocalRedis, prefix: str) -> Iterator[SyncClient]:
    with SyncClient.from_url(
        redis_server.url, environment="test", taskq_prefix=prefix, taskq_tasks=__name__
    ) as c:
        yield c


@pytest.fixture
def worker_side(redis: Redis, prefix: str) -> Taskq:
    return Taskq(redis, QueueConfig.of(taskq_prefix=prefix, taskq_tasks=__name__))


async def keys_of(redis: Redis, prefix: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(f"{prefix}:*")]


async def test_enqueue_by_task_takes_the_tasks_defaults(client: Client, worker_side: Taskq) -> None:
    done = await client.enqueue(resize, Resize(width=64))
    job = await client.get_job(done.id)
    assert job is not None
    assert done.created
    assert (job.task, job.queue, job.priority, job.max_attempts, job.timeout_seconds) == (
        "test.client.resize", "images", 7, 4, 42,
    )  # fmt: skip
    assert job.args == {"width": 64, "label": "thumb"}  # the model's defaults are written out
    claimed = (await worker_side.claim("images", "w", 5)).jobs
    assert [c.id for c in claimed] == [done.id]


async def test_enqueue_by_name_validates_and_options_override(client: Client) -> None:
    done = await client.enqueue(
        "test.client.resize", {"width": "32"}, queue="default", priority=1, max_attempts=2
    )
    job = await client.get_job(done.id, "default")
    assert job is not None
    assert (job.queue, job.priority, job.max_attempts, job.args["width"]) == ("default", 1, 2, 32)


async def test_idempotency_key_returns_the_first_job(client: Client) -> None:
    first = await client.enqueue(resize, Resize(width=1), idempotency_key="order-7")
    again = await client.enqueue(resize, Resize(width=1), idempotency_key="order-7")
    assert (again.id, again.created) == (first.id, False)


async def test_refusals_write_nothing(client: Client, redis: Redis, prefix: str) -> None:
    with pytest.raises(UnknownTask):
        await client.enqueue("test.client.nope", {"width": 1})
    with pytest.raises(ValidationError):
        await client.enqueue("test.client.resize", {"width": 0})
    with pytest.raises(ValidationError):
        await client.enqueue("test.client.resize", {"width": 5, "extra": 1})
    with pytest.raises(QueueNotDeclared):
        await client.enqueue(resize, Resize(width=5), queue="undeclared")
    assert await keys_of(redis, prefix) == []


async def test_enqueue_many_cancel_and_wait(client: Client, worker_side: Taskq, redis: Redis) -> None:
    out = await client.enqueue_many(
        [client.request(resize, Resize(width=w)) for w in (1, 2)] + [plain.request(Resize(width=3))]
    )
    assert len({o.id for o in out}) == 3
    assert await client.cancel(out[2].id) == JobStatus.CANCELLED
    assert (await client.wait(out[2].id, timeout=5)).status == JobStatus.CANCELLED  # already ended

    claimed = (await worker_side.claim("images", "w", 1)).jobs[0]
    waiting = asyncio.create_task(client.wait(claimed.id, timeout=10))
    channel = worker_side.queue_keys("images").events
    deadline = asyncio.get_running_loop().time() + 5
    while (await redis.pubsub_numsub(channel))[0][1] == 0:  # the waiter is subscribed: now end it
        assert asyncio.get_running_loop().time() < deadline, "wait() never subscribed"
        await asyncio.sleep(0.005)
    await worker_side.complete("images", [Ack(claimed.id, claimed.token, '{"w": 1}')])
    job = await waiting
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"w": 1})

    with pytest.raises(TimeoutError):  # not RedisUnavailable: Redis answered, the job did not end
        await client.wait(out[1].id, timeout=0.2)


def test_sync_client_same_api(sync_client: SyncClient, prefix: str, redis_server: LocalRedis) -> None:
    done = sync_client.enqueue(resize, Resize(width=9))
    by_name = sync_client.enqueue("test.client.resize", {"width": 10}, priority=2)
    job, other = sync_client.get_job(done.id), sync_client.get_job(by_name.id)
    assert job is not None
    assert other is not None
    assert (job.queue, job.priority, job.max_attempts, other.priority) == ("images", 7, 4, 2)
    with pytest.raises(UnknownTask):
        sync_client.enqueue("test.client.nope")
    with pytest.raises(ValidationError):
        sync_client.enqueue(resize, {"width": -1})
    assert sync_client.cancel(done.id) == JobStatus.CANCELLED
    assert sync_client.wait(done.id, timeout=5).status == JobStatus.CANCELLED
    with pytest.raises(TimeoutError):
        sync_client.wait(by_name.id, timeout=0.2)


def test_fast_false_writes_the_same_jobs(redis_server: LocalRedis, prefix: str) -> None:
    with SyncClient.from_url(
        redis_server.url, environment="test", taskq_prefix=prefix, taskq_tasks=__name__, fast=False
    ) as c:
        assert c.wires is None
        job = c.get_job(c.enqueue(resize, Resize(width=3)).id)
        assert job is not None
        assert (job.queue, job.priority) == ("images", 7)


async def test_tasks_given_replace_the_registry(redis_server: LocalRedis, prefix: str) -> None:
    async with Client.from_url(
        redis_server.url, environment="test", taskq_prefix=prefix, queues="*", tasks=[plain]
    ) as c:
        await c.enqueue("test.client.plain", {"width": 1})
        with pytest.raises(UnknownTask):
            await c.enqueue("send_email", {"recipient_email": "a@example.com"})
