"""A job whose code runs in a thread (like ``send_email``) cannot be interrupted. Stopping it must not
pretend otherwise: a cancel is not reported while the thread still runs, and a graceful stop whose
grace is shorter than the thread never hands the job to another worker while it still runs here."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

from taskq import JobStatus, Taskq
from worker.handlers.debug import LedgerLine, read_ledger
from worker.manager import EXIT_JOBS_LEFT_RUNNING
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, WorkerProcess, wait_for, wait_status


def runs_of(settings: WorkerSettings, job_id: str) -> list[LedgerLine]:
    return [line for line in read_ledger(settings.worker_state_dir) if line.job_id == job_id]


async def started(settings: WorkerSettings, job_id: str, pid: int) -> None:
    async def seen() -> bool:
        return any(r.event == "start" and r.pid == pid for r in runs_of(settings, job_id))

    await wait_for(seen, 20, f"job {job_id} to start in worker {pid}")


async def test_a_cancelled_thread_job_is_not_reported_before_its_thread_returns(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    settings = make_settings()
    client = client_for(settings)
    proc = spawn_worker(settings)
    job_id = (await client.enqueue("debug.hold", {"seconds": 2.5, "tag": "sent"})).id
    await started(settings, job_id, proc.proc.pid)

    assert await client.cancel(job_id) is JobStatus.RUNNING  # flagged: the worker sees it at a heartbeat

    async def settled() -> bool:
        job = await client.get_job(job_id)
        if job is None or job.status not in TERMINAL:
            return False
        ends = [r for r in runs_of(settings, job_id) if r.event == "end"]
        assert ends, f"reported {job.status.value} while the handler's thread was still running"
        return True

    await wait_for(settled, 20, "the job to settle")
    job = await client.get_job(job_id)
    assert job is not None
    # The thread ran to its end (the email went out): the record says what really happened.
    assert job.status is JobStatus.SUCCEEDED
    assert job.result == "sent"
    proc.signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 20) == 0


async def test_a_thread_job_longer_than_the_grace_never_runs_twice_at_once(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    settings = make_settings(worker_shutdown_grace=1.0)
    client = client_for(settings)
    first = spawn_worker(settings)
    job_id = (await client.enqueue("debug.hold", {"seconds": 10, "tag": "sent"}, max_attempts=3)).id
    await started(settings, job_id, first.proc.pid)
    second = spawn_worker(settings)  # idle, ready to take the job as soon as it is free

    first.signal(signal.SIGTERM)
    # Grace over, the thread still runs: not handed back; the worker waits a bound, then exits
    # with the thread still in it (code 3), leaving the job to its lease.
    assert await asyncio.to_thread(first.wait, 30) == EXIT_JOBS_LEFT_RUNNING, first.log()[-3000:]
    first_gone = time.time()

    job = await wait_status(client, job_id, TERMINAL, timeout=40)
    assert job.status is JobStatus.SUCCEEDED
    runs = runs_of(settings, job_id)
    starts = [r for r in runs if r.event == "start"]
    assert [r.pid for r in starts] == [first.proc.pid, second.proc.pid], runs
    ends = {r.pid: r.at for r in runs if r.event == "end"}
    # The first execution ended (its thread returned, or its process exited) before the second began.
    first_end = ends.get(first.proc.pid, first_gone)
    assert starts[1].at > first_end, runs
    second.signal(signal.SIGTERM)
    assert await asyncio.to_thread(second.wait, 20) == 0
