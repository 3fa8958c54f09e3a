"""A task's own options decide how a real worker runs its jobs, not the deployment's defaults:
``retry_backoff`` spaces its retries, ``max_attempts`` (filled in by ``Task.request``) dead-letters
it, ``timeout_seconds`` stops it (a coroutine cancelled, an isolated child killed).

The deployment's defaults are set far from the tasks' (backoff 30 s, 5 attempts, 300 s timeout), so a
job run by them instead fails its test. Workers are real ``python -m worker`` processes loading
``tests/fixtures/acme_tasks/tasks.py`` through ``TASKQ_TASKS``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taskq import EnqueueRequest, JobStatus, Task, Taskq, TaskRegistry
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, WorkerProcess, wait_for, wait_status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ACME = "acme_tasks.tasks"
#: The deployment's defaults, far from every acme task's own.
DEFAULTS: dict[str, Any] = {
    "retry_backoff_base_seconds": 30,
    "retry_backoff_max_seconds": 60,
    "default_max_attempts": 5,
    "default_timeout_seconds": 300,
}

Spawn = Callable[..., WorkerProcess]
Client = Callable[[WorkerSettings], Taskq]


def acme(name: str) -> Task[Any]:
    """An acme task as a producer gets it: from the registry its TASKQ_TASKS loads."""
    if str(FIXTURES) not in sys.path:
        sys.path.insert(0, str(FIXTURES))
    return TaskRegistry.load(ACME).get(name)


def pythonpath() -> str:
    return os.pathsep.join(p for p in (str(FIXTURES), os.environ.get("PYTHONPATH", "")) if p)


async def enqueue(taskq: Taskq, request: EnqueueRequest) -> str:
    return (await taskq.enqueue_many([request]))[0].id


def process_gone(pid: int) -> bool:
    """Killed and reaped, or killed and not yet reaped (a zombie runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def test_retry_backoff_and_max_attempts_are_the_tasks(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn, tmp_path: Path
) -> None:
    settings = make_settings(taskq_tasks=ACME, **DEFAULTS)
    taskq = client_for(settings)
    markers = tmp_path / "flaky"
    markers.mkdir()
    flaky = await enqueue(taskq, acme("acme.flaky").request({"marker_dir": str(markers)}))
    doomed = await enqueue(taskq, acme("acme.always_fails").request())
    spawn_worker(settings, PYTHONPATH=pythonpath())

    job = await wait_status(taskq, flaky, TERMINAL, timeout=30)
    assert (job.status, job.result, job.attempts) == (JobStatus.SUCCEEDED, 2, 2), job
    first, second = (float((markers / str(n)).read_text()) for n in (1, 2))
    # retry_backoff=(0.2, 0.2): equal jitter draws 0.1-0.2 s; the deployment's would be 15-30 s (the
    # upper bound leaves a loaded box room for the failure, the promotion and the next claim).
    assert 0.1 <= second - first < 10.0, second - first

    # acme.always_fails has no backoff of its own: its one retry waits the deployment's 15-30 s.
    job = await wait_status(taskq, doomed, TERMINAL, timeout=60)
    assert job.status is JobStatus.FAILED
    assert (job.max_attempts, job.attempts) == (2, 2)  # max_attempts=2, not the deployment's 5
    assert job.error is not None
    assert (job.error.reason, job.error.type) == ("error", "RuntimeError")


async def test_timeout_seconds_is_the_tasks_and_an_isolated_handler_is_killed(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn, tmp_path: Path
) -> None:
    settings = make_settings(taskq_tasks=ACME, **DEFAULTS)
    taskq = client_for(settings)
    markers = {name: tmp_path / f"{name}.marker" for name in ("acme.slow", "acme.slow_isolated")}
    ids = {
        name: await enqueue(taskq, acme(name).request({"seconds": 30, "marker": str(marker)}))
        for name, marker in markers.items()
    }
    spawn_worker(settings, PYTHONPATH=pythonpath())

    for name, job_id in ids.items():
        job = await wait_status(taskq, job_id, TERMINAL, timeout=30)
        assert job.status is JobStatus.FAILED, (name, job)
        # The task's (3 s: time enough for an isolated child to start on a loaded box), not the
        # deployment's 300.
        assert job.timeout_seconds == 3
        assert job.error is not None
        assert (job.error.reason, job.error.type) == ("timeout", "JobTimeout"), (name, job.error)
        assert job.started_at is not None
        assert job.finished_at is not None
        assert (job.finished_at - job.started_at).total_seconds() < 15, name  # not the 30 s sleep
        assert markers[name].read_text() != "done", name

    # The isolated handler ran in its own process, and that process was killed at the timeout.
    child = int(markers["acme.slow_isolated"].read_text())
    assert child != int(markers["acme.slow"].read_text())  # the async one ran in the worker itself

    async def killed() -> bool:
        return process_gone(child)

    await wait_for(killed, 10, f"isolated child {child} to be killed")
