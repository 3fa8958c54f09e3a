"""A poison job: its handler kills the whole worker process (``debug.crash``). Under a restart policy
it must be dead-lettered after ``max_attempts`` with reason ``worker_lost``, crashing exactly that
many workers, while every other job keeps flowing."""

from __future__ import annotations

from collections.abc import Callable

from taskq import DeadReason, JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, WorkerProcess, wait_for, wait_status

Spawn = Callable[..., WorkerProcess]
Client = Callable[[WorkerSettings], Taskq]
CRASH_CODE = 3  # not a signal's 128+n: a crash by this job, and nothing else, exits with it


async def test_a_job_that_crashes_its_worker_is_dead_lettered_while_others_flow(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn
) -> None:
    settings = make_settings(
        worker_concurrency=4, lease_seconds=1.5, heartbeat_seconds=0.3, worker_maintenance_seconds=0.3
    )
    taskq = client_for(settings)
    workers = [spawn_worker(settings), spawn_worker(settings)]
    crashes: list[int] = []

    def restart_policy() -> None:
        """What a container restart policy does: every worker that died is replaced."""
        for index, proc in enumerate(workers):
            code = proc.proc.poll()
            if code is not None:
                crashes.append(code)
                workers[index] = spawn_worker(settings)

    before = [(await taskq.enqueue("debug.noop", {"tag": f"b{i}"})).id for i in range(100)]
    poison = (await taskq.enqueue("debug.crash", {"exit_code": CRASH_CODE}, max_attempts=2)).id
    during = [(await taskq.enqueue("debug.sleep", {"seconds": 0.05, "tag": f"d{i}"})).id for i in range(100)]

    async def poison_settled() -> bool:
        restart_policy()
        job = await taskq.get_job(poison)
        return job is not None and job.status.terminal

    await wait_for(poison_settled, 60, "the poison job to be dead-lettered")
    job = await wait_status(taskq, poison, TERMINAL)
    assert job.status is JobStatus.FAILED
    assert job.attempts == 2
    assert job.error is not None
    assert job.error.reason == DeadReason.WORKER_LOST.value
    # Each attempt took one worker down, and nothing else did.
    assert crashes == [CRASH_CODE, CRASH_CODE], crashes

    after = [(await taskq.enqueue("debug.noop", {"tag": f"a{i}"})).id for i in range(50)]

    async def all_flowed() -> bool:
        restart_policy()
        for job_id in before + during + after:
            other = await taskq.get_job(job_id)
            if other is None or not other.status.terminal:
                return False
        return True

    await wait_for(all_flowed, 60, "every other job to finish")
    for job_id in before + during + after:
        other = await wait_status(taskq, job_id, TERMINAL)
        assert other.status is JobStatus.SUCCEEDED, other
    assert crashes == [CRASH_CODE, CRASH_CODE], crashes  # the dead-lettered job never ran again
    stats = await taskq.stats("default")
    assert (stats.dead, stats.pending, stats.running) == (1, 0, 0)
