"""The worker's ``JobContext`` through real worker processes loading a user task module
(tests/fixtures/acme_fanout), in each of the three ways a handler runs (async, thread, isolated):

- ``ctx.enqueue`` starts each follow-up exactly once per job: a retried attempt, or a run after the
  worker was SIGKILLed, gets the first attempt's jobs back and never makes a second set; a retry
  asking for different follow-ups under the same keys is refused with ``IdempotencyConflict``;
- ``ctx.progress`` (synchronous, coalesced) reaches the job's stored progress;
- ``ctx.log`` lines carry the job's id, task, queue and attempt.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskq import JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import WorkerProcess, wait_for, wait_status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
Spawn = Callable[..., WorkerProcess]
Client = Callable[[WorkerSettings], Taskq]
DONE = {JobStatus.SUCCEEDED, JobStatus.FAILED}
#: A job here starts a ``python -m worker`` first (imports, the task module) and may retry once.
JOB_SECONDS = 30.0


def spawn_acme(spawn: Spawn, settings: WorkerSettings) -> WorkerProcess:
    """A ``python -m worker`` that loads the fixture module, as a deployment would name its own."""
    path = os.pathsep.join(p for p in (str(FIXTURES), os.environ.get("PYTHONPATH", "")) if p)
    return spawn(settings, TASKQ_TASKS="acme_fanout", PYTHONPATH=path)


def ledger(path: Path) -> list[dict[str, Any]]:
    """One line per leaf execution, written by the leaf itself."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def settled(taskq: Taskq, queue: str = "default", timeout: float = 20) -> None:
    """Wait until nothing is pending, scheduled or running: every follow-up made has run."""

    async def idle() -> bool:
        stats = await taskq.stats(queue)
        return stats.pending == 0 and stats.scheduled == 0 and stats.running == 0

    await wait_for(idle, timeout, f"queue {queue} to drain")


def log_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


MODES = ["acme.fanout_async", "acme.fanout_thread", "acme.fanout_isolated"]


@pytest.mark.parametrize(("task", "keyed"), [*((m, False) for m in MODES), ("acme.fanout_async", True)])
async def test_a_retried_attempt_does_not_enqueue_its_follow_ups_twice(
    task: str, keyed: bool, make_settings: Callable[..., WorkerSettings], client_for: Client,
    spawn_worker: Spawn, tmp_path: Path,
) -> None:  # fmt: skip
    settings = make_settings()
    taskq = client_for(settings)
    book = tmp_path / "leaves.jsonl"
    args = {"ledger": str(book), "n": 3, "fail_attempts": 1, "keyed": keyed}
    job_id = (await taskq.enqueue(task, args)).id
    spawn_acme(spawn_worker, settings)

    job = await wait_status(taskq, job_id, DONE, JOB_SECONDS)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2
    await settled(taskq)
    runs = ledger(book)
    assert len(runs) == 3, runs  # not 6: attempt 2 got attempt 1's follow-ups back
    assert sorted(r["index"] for r in runs) == [0, 1, 2]
    assert all(r["attempt"] == 1 and r["parent"] == job_id for r in runs)
    assert isinstance(job.result, dict)
    assert job.result["created"] == [False, False, False]
    assert sorted(job.result["ids"]) == sorted(r["job"] for r in runs)


@pytest.mark.parametrize("task", ["acme.fanout_async", "acme.fanout_isolated"])
async def test_follow_ups_survive_a_sigkill_of_the_worker_exactly_once(
    task: str, make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn,
    tmp_path: Path,
) -> None:  # fmt: skip
    settings = make_settings(lease_seconds=1.5, heartbeat_seconds=0.3, worker_maintenance_seconds=0.3)
    taskq = client_for(settings)
    book, release = tmp_path / "leaves.jsonl", tmp_path / "release"
    job_id = (await taskq.enqueue(task, {"ledger": str(book), "n": 4, "hold": str(release)})).id
    first = spawn_acme(spawn_worker, settings)

    async def follow_ups_done() -> bool:
        # Succeeded, not merely run: a leaf whose ack the SIGKILL beats is rightly run again
        # (at least once), which would hide what this test counts, the follow-ups made.
        runs = ledger(book)
        if len(runs) != 4:
            return False
        jobs = [await taskq.get_job(r["job"]) for r in runs]
        return all(j is not None and j.status is JobStatus.SUCCEEDED for j in jobs)

    await wait_for(follow_ups_done, 30, "the 4 follow-ups of attempt 1 to succeed")
    first.signal(signal.SIGKILL)  # mid-job: the handler is blocked after its enqueues
    assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
    release.touch()
    spawn_acme(spawn_worker, settings)  # its reaper takes the job back once the lease lapses

    job = await wait_status(taskq, job_id, DONE, JOB_SECONDS)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2
    await settled(taskq)
    runs = ledger(book)
    assert len(runs) == 4, runs  # not 8: the rerun got the first attempt's follow-ups back
    assert isinstance(job.result, dict)
    assert job.result["created"] == [False] * 4
    assert sorted(job.result["ids"]) == sorted(r["job"] for r in runs)


@pytest.mark.parametrize("task", MODES)
async def test_a_retry_asking_for_different_follow_ups_is_refused(
    task: str, make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn,
    tmp_path: Path,
) -> None:  # fmt: skip
    settings = make_settings()
    taskq = client_for(settings)
    book = tmp_path / "leaves.jsonl"
    args = {"ledger": str(book), "n": 2, "fail_attempts": 1, "vary": True}
    job_id = (await taskq.enqueue(task, args, max_attempts=2)).id
    spawn_acme(spawn_worker, settings)

    job = await wait_status(taskq, job_id, DONE, JOB_SECONDS)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.type == "IdempotencyConflict"
    assert f"{job_id}.1" in job.error.message
    assert "different request" in job.error.message
    await settled(taskq)
    assert len(ledger(book)) == 2  # only attempt 1's


@pytest.mark.parametrize("task", ["acme.progress_async", "acme.progress_thread", "acme.progress_isolated"])
async def test_progress_from_each_kind_of_handler_is_stored_on_the_job(
    task: str, make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn,
    tmp_path: Path,
) -> None:  # fmt: skip
    settings = make_settings()
    taskq = client_for(settings)
    release = tmp_path / "release"
    job_id = (await taskq.enqueue(task, {"release": str(release)})).id
    spawn_acme(spawn_worker, settings)

    async def at_half() -> bool:
        job = await taskq.get_job(job_id)
        return job is not None and job.progress is not None and job.progress.percent == 50

    # 1..49 "counting" then 50 "half", without awaiting: the last value is the one that stays.
    await wait_for(at_half, 30, f"{task}'s progress to reach 50")
    job = await taskq.get_job(job_id)
    assert job is not None
    assert job.status is JobStatus.RUNNING
    assert job.progress is not None
    assert job.progress.message == "half"
    release.touch()
    job = await wait_status(taskq, job_id, DONE, JOB_SECONDS)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert isinstance(job.result, str)
    assert "from 0 to 100" in job.result  # progress(101) raised ValueError in the handler


@pytest.mark.parametrize("task", ["acme.fanout_async", "acme.fanout_isolated"])
async def test_the_job_logger_lines_carry_the_job(
    task: str, make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn,
    tmp_path: Path,
) -> None:  # fmt: skip
    settings = make_settings()
    taskq = client_for(settings)
    job_id = (await taskq.enqueue(task, {"ledger": str(tmp_path / "leaves.jsonl"), "n": 1})).id
    proc = spawn_acme(spawn_worker, settings)  # its stdout and stderr both go to proc.log()

    job = await wait_status(taskq, job_id, DONE, JOB_SECONDS)
    assert job.status is JobStatus.SUCCEEDED, job.error

    def line() -> dict[str, Any] | None:
        return next((d for d in log_lines(proc.log()) if d.get("msg") == "acme fanout"), None)

    async def logged() -> bool:
        return line() is not None

    await wait_for(logged, 10, "the handler's log line")
    found = line()
    assert found is not None
    assert found["job_id"] == job_id
    assert found["attempt"] == 1
    assert found["task"] == task
    assert found["queue"] == "default"
    assert found["follow_ups"] == 1  # the handler's own extra, kept beside the job's fields
    assert found["logger"] == "taskq.task"


@pytest.mark.parametrize(
    ("what", "type_name", "text"),
    [("unknown", "UnknownTask", "acme.nope"), ("invalid", "ValidationError", "index")],
)
async def test_an_isolated_handlers_enqueue_error_comes_back_with_its_type_and_message(
    what: str, type_name: str, text: str, make_settings: Callable[..., WorkerSettings], client_for: Client,
    spawn_worker: Spawn,
) -> None:  # fmt: skip
    settings = make_settings()
    taskq = client_for(settings)
    failing = (await taskq.enqueue("acme.bad_enqueue_isolated", {"what": what})).id
    caught = (await taskq.enqueue("acme.bad_enqueue_isolated", {"what": what, "catch": True})).id
    spawn_acme(spawn_worker, settings)

    job = await wait_status(taskq, failing, DONE, JOB_SECONDS)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.type == type_name  # the original's, not the messenger's
    assert text in job.error.message
    job = await wait_status(taskq, caught, DONE, JOB_SECONDS)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert isinstance(job.result, str)
    assert job.result.startswith(f"{type_name}: ")  # what the handler caught says what failed


@pytest.mark.parametrize("stop", ["timeout", "cancel"])
async def test_an_isolated_handler_stopped_after_its_requests_leaves_the_worker_serving(
    stop: str, make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn,
    tmp_path: Path,
) -> None:  # fmt: skip
    settings = make_settings()
    taskq = client_for(settings)
    book, never = tmp_path / "leaves.jsonl", tmp_path / "never"
    args = {"ledger": str(book), "n": 2, "hold": str(never)}
    options: dict[str, Any] = {"max_attempts": 1}
    if stop == "timeout":
        options["timeout"] = 3.0
    job_id = (await taskq.enqueue("acme.fanout_isolated", args, **options)).id
    spawn_acme(spawn_worker, settings)

    async def follow_ups_ran() -> bool:
        return len(ledger(book)) == 2

    await wait_for(follow_ups_ran, 30, "the follow-ups to run")
    if stop == "cancel":
        await taskq.cancel(job_id)
    job = await wait_status(taskq, job_id, {JobStatus.FAILED, JobStatus.CANCELLED}, JOB_SECONDS)
    if stop == "cancel":
        assert job.status is JobStatus.CANCELLED
    else:
        assert job.error is not None
        assert job.error.type == "JobTimeout"
    # The worker is not stuck on the killed child's pipe: it runs the next job, requests and all.
    after = (await taskq.enqueue("acme.fanout_isolated", {"ledger": str(book), "n": 1})).id
    job = await wait_status(taskq, after, DONE, JOB_SECONDS)
    assert job.status is JobStatus.SUCCEEDED, job.error
    await settled(taskq)
    assert len(ledger(book)) == 3
