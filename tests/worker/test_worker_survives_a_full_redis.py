"""A Redis at maxmemory for a while: a real worker keeps the lease of the job it holds, acks it once,
keeps trying to claim while idle, claims again once Redis has room, and stops cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from taskq import EnqueueRequest, JobStatus, RedisFull, Taskq, connect
from taskq.localserver import LocalRedis
from taskq.workers import live_workers
from worker.handlers.debug import read_ledger
from worker.testing import WorkerProcess, wait_for, wait_status, worker_settings


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A server of this test's own: its memory limit is changed."""
    with LocalRedis().running() as server:
        yield server


@pytest.fixture
async def own_taskq(own_redis: LocalRedis, prefix: str, tmp_path: Path) -> AsyncIterator[Taskq]:
    redis = connect(worker_settings(own_redis.url, prefix, tmp_path))
    yield Taskq.from_settings(redis, worker_settings(own_redis.url, prefix, tmp_path))
    await redis.aclose()


async def fill_to_maxmemory(taskq: Taskq) -> None:
    """Filler jobs in a queue no worker serves (every key stays spelled by ``taskq.keys``), then a
    ``maxmemory`` below what is used: Redis stays over its limit until the limit is raised."""
    for _ in range(20):
        await taskq.enqueue_many([EnqueueRequest("debug.noop", {"tag": "x" * 1000}, queue="filler")] * 100)
    used = int((await taskq.redis.info("memory"))["used_memory"])
    await taskq.redis.config_set("maxmemory", used - 512 * 1024)
    with pytest.raises(RedisFull):
        await taskq.enqueue("debug.noop", queue="filler")


async def refused_scripts(taskq: Taskq) -> int:
    """Script calls Redis refused (claims, while the worker's scripts that must run are allowed)."""
    stats = await taskq.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("rejected_calls", 0))


async def test_a_worker_keeps_its_lease_acks_once_and_resumes_after_redis_was_full(
    own_redis: LocalRedis,
    own_taskq: Taskq,
    prefix: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    settings = worker_settings(
        own_redis.url, prefix, tmp_path, worker_concurrency=2, worker_idle_wait_seconds=0.5
    )
    proc = spawn_worker(settings)
    held = (await own_taskq.enqueue("debug.hold", {"seconds": 4.0}, max_attempts=3)).id

    async def started() -> bool:
        return any(line.job_id == held for line in read_ledger(settings.worker_state_dir))

    await wait_for(started, 20, "the long job to start")
    active = own_taskq.queue_keys("default").active
    deadline_before = await own_taskq.redis.zscore(active, held)
    assert deadline_before is not None

    await fill_to_maxmemory(own_taskq)
    refused_before = await refused_scripts(own_taskq)

    async def renewed_while_full() -> bool:
        score = await own_taskq.redis.zscore(active, held)
        return score is not None and score > deadline_before + 1000

    async def idle_slot_kept_claiming() -> bool:
        return await refused_scripts(own_taskq) >= refused_before + 2

    # Full for longer than a lease (2 s): the job keeps its lease, the idle slot keeps asking for work
    # (refused), and the job's result is acked (complete runs at maxmemory).
    await wait_for(renewed_while_full, 10, "the lease to be renewed while Redis is full")
    await wait_for(idle_slot_kept_claiming, 10, "claims to be refused while Redis is full")
    done = await wait_status(own_taskq, held, {JobStatus.SUCCEEDED, JobStatus.FAILED}, timeout=15)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 1
    with pytest.raises(RedisFull):  # still full all along
        await own_taskq.enqueue("debug.noop", queue="filler")

    await own_taskq.redis.config_set("maxmemory", 0)
    after = (await own_taskq.enqueue("debug.noop", {"tag": "after"})).id
    assert (await wait_status(own_taskq, after, {JobStatus.SUCCEEDED}, timeout=20)).result == "after"

    runs = [line for line in read_ledger(settings.worker_state_dir) if line.job_id == held]
    assert [line.event for line in runs] == ["start", "end"], runs

    worker_ids = [w.id for w in await live_workers(own_taskq)]
    assert len(worker_ids) == 1
    proc.signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 20) == 0, proc.log()[-3000:]
    assert await own_taskq.redis.zscore(own_taskq.keys.workers, worker_ids[0]) is None
    log = proc.log()
    assert "Traceback" not in log, log[-3000:]
    assert "Event loop is closed" not in log, log[-3000:]
    # One line when Redis filled up and one when it had room again, not one per refused call.
    assert log.count("redis full") == log.count("redis has room again") == 1, log[-3000:]
