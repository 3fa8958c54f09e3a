"""A Redis at ``maxmemory`` (noeviction) refuses new work, but still runs every script that keeps a
lease alive or settles a job: heartbeat, complete, fail, release and reap. Otherwise a full Redis for
a moment would cost every running job its lease, and its result."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from taskq import Ack, EnqueueRequest, JobError, JobStatus, QueueConfig, RedisFull, ScriptCode, Taskq
from taskq.localserver import LocalRedis


@pytest.fixture
def own_server() -> Iterator[LocalRedis]:
    """A server of this test's own: its memory limit is changed."""
    with LocalRedis().running() as server:
        yield server


@pytest.fixture
async def own_client(own_server: LocalRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_server.url)
    yield client
    await client.aclose()


async def fill_to_maxmemory(taskq: Taskq, queue: str) -> None:
    """Enqueue a few MB of filler jobs (so every key stays spelled by ``taskq.keys``), then lower
    ``maxmemory`` below what is used: Redis stays over its limit until it is raised again."""
    for _ in range(20):
        await taskq.enqueue_many([EnqueueRequest("debug.noop", {"tag": "x" * 1000}, queue=queue)] * 100)
    used = int((await taskq.redis.info("memory"))["used_memory"])
    await taskq.redis.config_set("maxmemory", used - 512 * 1024)
    with pytest.raises(RedisFull):
        await taskq.enqueue("debug.noop", queue=queue)


async def test_a_full_redis_renews_leases_and_settles_jobs_but_refuses_new_work(
    own_client: Redis, queue_name: str
) -> None:
    taskq = Taskq(own_client, QueueConfig.of(taskq_prefix="full", lease_seconds=60, queues="*"))
    ids = [(await taskq.enqueue("debug.noop", queue=queue_name)).id for _ in range(4)]
    batch = await taskq.claim(queue_name, "w1", 3)
    done, failed, released = batch.jobs
    await fill_to_maxmemory(taskq, f"{queue_name}-filler")

    # New work is refused: the last queued job stays queued, and no enqueue gets in.
    with pytest.raises(RedisFull):
        await taskq.claim(queue_name, "w1", 1)
    with pytest.raises(RedisFull):
        await taskq.enqueue("debug.noop", queue=queue_name)

    # What keeps leases alive and settles jobs still runs.
    held = {queue_name: [(j.id, j.token) for j in batch.jobs]}
    codes = await taskq.heartbeat(held)
    assert set(codes.values()) == {ScriptCode.OK}
    flags, _ = await taskq.complete(queue_name, [Ack(done.id, done.token, "null")])
    assert flags == [True]
    error = JobError(type="Boom", message="failed while Redis was full")
    assert await taskq.fail(queue_name, failed.id, failed.token, error, retryable=False) is JobStatus.FAILED
    assert await taskq.release(queue_name, [(released.id, released.token)]) == 1
    assert (await taskq.reap(queue_name, lock_seconds=1, owner="w1")).ran

    statuses = {job_id: (await _status(taskq, job_id, queue_name)) for job_id in ids}
    assert statuses == {
        done.id: JobStatus.SUCCEEDED,
        failed.id: JobStatus.FAILED,
        released.id: JobStatus.QUEUED,
        ids[3]: JobStatus.QUEUED,
    }


async def _status(taskq: Taskq, job_id: str, queue: str) -> JobStatus:
    job = await taskq.get_job(job_id, queue)
    assert job is not None
    return job.status
