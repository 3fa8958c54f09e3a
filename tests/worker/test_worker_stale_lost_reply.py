"""A worker whose job was reaped and claimed again by itself: the lease keeper's late "lost" answer
about the old lease must not stop the new run (it would lose its lease and an attempt)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from taskq import JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import RunningWorker, running_in_hand, wait_for, wait_status


async def test_a_late_lost_answer_for_the_old_lease_leaves_the_new_run_alone(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Callable[..., Awaitable[RunningWorker]],
) -> None:
    settings = make_settings(worker_concurrency=2, worker_idle_wait_seconds=0.5)
    client = client_for(settings)
    handle = await start_worker(settings)
    worker = handle.worker
    job_id = (await client.enqueue("debug.sleep", {"seconds": 1.5, "tag": "done"})).id

    old_token = (await running_in_hand(worker, job_id)).job.token

    # Its lease runs out (as if the worker had stalled) and the reaper takes it back; this worker
    # has a free slot and claims it again.
    await client.redis.zadd(client.queue_keys("default").active, {job_id: 1})
    assert (await client.reap("default")).requeued == 1

    async def claimed_again() -> bool:
        h = worker.slots.held.get(job_id)
        return h is not None and h.job.token != old_token and h.task is not None

    await wait_for(claimed_again, 10, "the job to be claimed again by the same worker")

    # The answer to a heartbeat sent before the reap, about the old lease, arrives now.
    assert worker.keeper is not None
    worker.keeper.on_lost(job_id, old_token)

    job = await wait_status(client, job_id, {JobStatus.SUCCEEDED, JobStatus.FAILED}, timeout=15)
    assert job.status is JobStatus.SUCCEEDED
    assert job.result == "done"
    assert job.attempts == 2  # the reap's retry, and no further one: the new run was never stopped
