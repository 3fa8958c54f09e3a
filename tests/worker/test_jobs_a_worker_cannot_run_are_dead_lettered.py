"""Jobs a worker cannot run are dead-lettered, never lost and never run wrong, through real
``python -m worker`` processes and user tasks (``tests/fixtures/acme_tasks``):

- a job whose task the worker does not have (its ``TASKQ_TASKS`` lacks the module) is dead-lettered
  as ``unknown_task``, and re-driven once a worker that has the task runs, it succeeds;
- a job whose args the worker's model refuses (producer and worker on different contract versions
  during a rolling deploy) is dead-lettered as ``invalid_args`` after one attempt: the handler never
  ran and the job is not retried, however many attempts it had."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from taskq import JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, WorkerProcess, wait_status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ACME = "acme_tasks.tasks"

Spawn = Callable[..., WorkerProcess]
Client = Callable[[WorkerSettings], Taskq]


async def burst(spawn_worker: Spawn, settings: WorkerSettings) -> WorkerProcess:
    """Run a worker until the queues are empty; it must exit 0."""
    pythonpath = os.pathsep.join(p for p in (str(FIXTURES), os.environ.get("PYTHONPATH", "")) if p)
    proc = spawn_worker(settings, "burst", PYTHONPATH=pythonpath)
    assert await asyncio.to_thread(proc.wait, 60) == 0, proc.log()
    return proc


async def test_a_job_for_a_task_the_worker_lacks_is_dead_lettered_and_re_drivable(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn
) -> None:
    without = make_settings()  # the built-ins only
    taskq = client_for(without)
    job_id = (await taskq.enqueue("acme.hello", {"name": "ada"})).id

    await burst(spawn_worker, without)
    job = await wait_status(taskq, job_id, TERMINAL, timeout=5)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert (job.error.reason, job.attempts) == ("unknown_task", 1)
    assert job_id in (await taskq.dead_letters("default")).job_ids

    await taskq.retry_dead(job_id)  # once a worker that has the task is deployed
    await burst(spawn_worker, make_settings(taskq_tasks=ACME))
    job = await wait_status(taskq, job_id, TERMINAL, timeout=5)
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, "hello ada")


async def test_args_the_workers_model_refuses_are_dead_lettered_unrun_and_not_retried(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn, tmp_path: Path
) -> None:
    settings = make_settings(taskq_tasks=ACME, default_max_attempts=5, retry_backoff_base_seconds=0)
    taskq = client_for(settings)  # core enqueues by name: it does not validate args
    refused, ran = tmp_path / "refused.marker", tmp_path / "ran.marker"
    bad = (await taskq.enqueue("acme.count", {"count": -1, "marker": str(refused)})).id
    extra = (await taskq.enqueue("acme.count", {"count": 1, "marker": str(refused), "colour": "red"})).id
    good = (await taskq.enqueue("acme.count", {"count": 3, "marker": str(ran)})).id

    await burst(spawn_worker, settings)
    for job_id, field in ((bad, "count"), (extra, "colour")):
        job = await wait_status(taskq, job_id, TERMINAL, timeout=5)
        assert job.status is JobStatus.FAILED, job
        assert job.error is not None
        assert (job.error.reason, job.error.type) == ("invalid_args", "InvalidArgs")
        assert field in job.error.message  # says which field the contract refused
        assert (job.attempts, job.max_attempts) == (1, 5)  # attempts left, and none used on a retry
    assert not refused.exists()  # the handler never ran
    job = await wait_status(taskq, good, TERMINAL, timeout=5)
    assert (job.status, job.result, ran.read_text()) == (JobStatus.SUCCEEDED, 3, "3")
