"""Redis going away and coming back: the worker rides it out, nothing accepted is lost."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from taskq import JobStatus, RedisUnavailable, Taskq, connect
from taskq.localserver import LocalRedis
from worker.testing import TERMINAL, RunningWorker, WorkerProcess, wait_for, wait_status, worker_settings


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A server of this test's own, so it can be restarted without disturbing the others."""
    with LocalRedis().running() as server:
        yield server


@pytest.fixture
async def own_taskq(own_redis: LocalRedis, prefix: str, tmp_path: Path) -> AsyncIterator[Taskq]:
    settings = worker_settings(own_redis.url, prefix, tmp_path)
    redis = connect(settings)
    yield Taskq.from_settings(redis, settings)
    await redis.aclose()


async def test_workers_reconnect_after_a_redis_restart_and_every_job_completes(
    own_redis: LocalRedis,
    own_taskq: Taskq,
    prefix: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    settings = worker_settings(own_redis.url, prefix, tmp_path, worker_concurrency=20, lease_seconds=3.0)
    ids = [(await own_taskq.enqueue("debug.sleep", {"seconds": 0.02})).id for _ in range(600)]
    workers = [spawn_worker(settings), spawn_worker(settings)]

    async def some_done() -> bool:
        registered = await own_taskq.redis.zcard(own_taskq.keys.workers)
        return registered == 2 and (await own_taskq.stats("default")).processed_total >= 100

    await wait_for(some_done, 30, "100 jobs done before the restart")
    # Down until every worker has noticed (a restart quicker than the client's one retry on a dead
    # connection would be no outage at all), then back up: AOF keeps every accepted job.
    await asyncio.to_thread(own_redis.stop)

    async def every_worker_noticed() -> bool:
        return all("redis unavailable" in proc.log() for proc in workers)

    await wait_for(every_worker_noticed, 30, "each worker to log the outage")
    await asyncio.to_thread(own_redis.start)

    async def all_done() -> bool:
        try:
            for job_id in ids:
                job = await own_taskq.get_job(job_id, "default")
                if job is None or job.status is not JobStatus.SUCCEEDED:
                    return False
        except RedisUnavailable:  # this test's own client reconnects on its next call
            return False
        return True

    await wait_for(all_done, 90, "every job to succeed after the restart")
    for proc in workers:
        proc.signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
        log = proc.log()
        # One line per state change, not one per retry nor per caller (event loop, lease thread).
        assert log.count("redis unavailable") == 1, log[-3000:]
        assert log.count("redis reachable again") == 1, log[-3000:]


async def test_a_result_finished_during_an_outage_is_acked_when_redis_returns(
    own_redis: LocalRedis,
    own_taskq: Taskq,
    prefix: str,
    tmp_path: Path,
    start_worker: Callable[..., Awaitable[RunningWorker]],
) -> None:
    settings = worker_settings(own_redis.url, prefix, tmp_path, lease_seconds=30.0, heartbeat_seconds=0.3)
    # Long enough to outlast the stop below (a stopping server still serves for a moment, and a loaded
    # box may be slow to get there): acked before the outage, nothing would be held to wait for.
    job_id = (await own_taskq.enqueue("debug.sleep", {"seconds": 3.0}, max_attempts=1)).id
    handle = await start_worker(settings)
    await wait_status(own_taskq, job_id, {JobStatus.RUNNING}, timeout=10)
    await asyncio.to_thread(own_redis.stop)

    async def finished_locally() -> bool:
        # Its run ended here, and its outcome waits to reach Redis: the job is still held.
        h = handle.worker.slots.held.get(job_id)
        return h is not None and h.task is not None and h.task.done()

    await wait_for(finished_locally, 20, "the job to finish while Redis is down")
    await asyncio.to_thread(own_redis.start)
    job = await wait_status(own_taskq, job_id, TERMINAL, timeout=20)
    assert job.status is JobStatus.SUCCEEDED
    assert job.attempts == 1
    assert await handle.stop() == 0


async def test_a_result_whose_lease_expired_during_the_outage_is_dropped_and_runs_again(
    own_redis: LocalRedis,
    own_taskq: Taskq,
    prefix: str,
    tmp_path: Path,
    start_worker: Callable[..., Awaitable[RunningWorker]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = worker_settings(own_redis.url, prefix, tmp_path, lease_seconds=1.0, heartbeat_seconds=0.2)
    # It must end during the outage: a short job could be acked before Redis went down, leaving no
    # result to drop. Ending past its 1 s lease, its ack is dropped and the job runs again.
    job_id = (await own_taskq.enqueue("debug.sleep", {"seconds": 2.0}, max_attempts=3)).id
    handle = await start_worker(settings)
    await wait_status(own_taskq, job_id, {JobStatus.RUNNING}, timeout=10)
    await asyncio.to_thread(own_redis.stop)

    async def dropped() -> bool:
        return "result dropped" in caplog.text and job_id not in handle.worker.slots.held

    await wait_for(dropped, 15, "the result to be dropped once its lease is gone")
    await asyncio.to_thread(own_redis.start)
    job = await wait_status(own_taskq, job_id, TERMINAL, timeout=20)  # reaped, then run again
    assert job.status is JobStatus.SUCCEEDED
    assert job.attempts == 2
    assert await handle.stop() == 0
