"""Two documented modes no other test ran: ``python -m worker burst`` (drain, then exit by itself) and
``WORKER_PREFETCH`` (jobs claimed beyond the concurrency, leased while they wait their turn)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from taskq import Job, JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, RunningWorker, WorkerProcess, wait_for, wait_status

Spawn = Callable[..., WorkerProcess]
Client = Callable[[WorkerSettings], Taskq]
Start = Callable[..., Awaitable[RunningWorker]]


async def test_burst_runs_every_queued_job_then_exits_0_by_itself(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn
) -> None:
    settings = make_settings(worker_queues="high:2,default:1", worker_concurrency=4)
    taskq = client_for(settings)
    ids = [(await taskq.enqueue("debug.noop", {"tag": f"h{i}"}, queue="high")).id for i in range(30)]
    ids += [(await taskq.enqueue("debug.sleep", {"seconds": 0.05, "tag": f"d{i}"})).id for i in range(30)]
    proc = spawn_worker(settings, "burst")
    # No signal is ever sent: the process must end on its own once both queues are empty.
    code = await asyncio.to_thread(proc.wait, 60)
    assert code == 0, proc.log()[-3000:]
    for job_id in ids:
        job = await taskq.get_job(job_id)
        assert job is not None
        assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1), job
    for queue in ("high", "default"):
        stats = await taskq.stats(queue)
        assert (stats.pending, stats.running) == (0, 0)
    assert await taskq.redis.zcard(taskq.keys.workers) == 0  # deregistered on the way out


async def _claimed_and_executing(taskq: Taskq, ids: list[str]) -> tuple[list[Job], list[Job]]:
    """Jobs held under a lease, and among them those whose handler runs (debug.sleep of 2 s or more
    reports progress as it starts; a prefetched job waiting for a slot has none)."""
    jobs = [job for job_id in ids if (job := await taskq.get_job(job_id)) is not None]
    held = [job for job in jobs if job.status is JobStatus.RUNNING]
    return held, [job for job in held if job.progress is not None]


async def test_prefetch_claims_beyond_the_concurrency_and_keeps_those_leases(
    make_settings: Callable[..., WorkerSettings], client_for: Client, start_worker: Start
) -> None:
    # Jobs of three leases each: a prefetched job waits at least that long, so it survives only if the
    # lease thread renews it while it waits.
    settings = make_settings(
        worker_concurrency=1, worker_prefetch=3, lease_seconds=1.0, heartbeat_seconds=0.2,
        worker_maintenance_seconds=0.2,
    )  # fmt: skip
    taskq = client_for(settings)
    ids = [(await taskq.enqueue("debug.sleep", {"seconds": 3.0, "tag": f"p{i}"})).id for i in range(6)]
    await start_worker(settings)
    snapshots: list[tuple[int, int]] = []

    async def prefetched() -> bool:
        held, executing = await _claimed_and_executing(taskq, ids)
        snapshots.append((len(held), len(executing)))
        return len(held) == 4 and len(executing) == 1

    await wait_for(prefetched, 20, "one job running and three prefetched")
    for job_id in ids:
        job = await wait_status(taskq, job_id, TERMINAL, timeout=60)
        assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1), job  # never reaped while waiting
    # Never more in hand than concurrency + prefetch, never more than the concurrency executing.
    assert max(held for held, _ in snapshots) <= 4
    assert max(executing for _, executing in snapshots) <= 1
    counters = (await taskq.stats("default")).counters
    assert (counters.get("lost", 0), counters.get("stale_acks", 0)) == (0, 0)
