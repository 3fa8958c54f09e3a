"""generate_report: a CSV artifact in REPORTS_DIR named after the job, with progress on the way."""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable

from taskq import JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, RunningWorker, wait_status


async def test_report_is_written_where_the_producer_serves_it(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Callable[..., Awaitable[RunningWorker]],
) -> None:
    settings = make_settings()
    taskq = client_for(settings)
    await start_worker(settings)
    dead = [
        (await taskq.enqueue("debug.fail", {"message": f"m{i}", "retryable": False})).id for i in range(3)
    ]
    for job_id in dead:
        await wait_status(taskq, job_id, {JobStatus.FAILED})
    job_id = (await taskq.enqueue("generate_report", {"title": "Weekly", "rows": 2})).id
    job = await wait_status(taskq, job_id, TERMINAL, timeout=15)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.result["artifact"] == f"{job_id}.csv"
    assert job.result["content_type"] == "text/csv"
    assert job.progress is not None
    assert job.progress.percent == 100
    path = settings.reports_dir / f"{job_id}.csv"
    rows = list(csv.DictReader(path.read_text().splitlines()))
    queue_rows = [r for r in rows if r["record"] == "queue"]
    dead_rows = [r for r in rows if r["record"] == "dead_letter"]
    assert [r["queue"] for r in queue_rows] == ["default"]
    assert queue_rows[0]["dead"] == "3"
    assert len(dead_rows) == 2  # capped by rows
    assert {r["job_id"] for r in dead_rows} <= set(dead)
    assert all(r["reason"] == "non_retryable" for r in dead_rows)
    assert not list(settings.reports_dir.glob(".*"))  # no temporary file left behind
