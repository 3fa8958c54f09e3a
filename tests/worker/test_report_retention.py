"""Report files do not pile up: a real worker deletes reports older than REPORT_TTL_SECONDS, a sweep
deletes a bounded number of files per pass, and the producer answers 410 Gone for an expired report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from producer.testing import assert_problem, serve
from producer.testing import make_settings as api_settings
from taskq import JobStatus, Taskq
from worker.handlers.report import sweep_reports
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, WorkerProcess, wait_for, wait_status


async def test_an_expired_report_is_deleted_by_the_worker_and_the_artifact_is_gone(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    spawn_worker: Callable[..., WorkerProcess],
    redis_url: str,
    prefix: str,
) -> None:
    settings = make_settings(report_ttl_seconds=1)
    taskq = client_for(settings)
    job_id = (await taskq.enqueue("generate_report", {"title": "t"})).id
    spawn_worker(settings)
    job = await wait_status(taskq, job_id, TERMINAL, timeout=30)
    assert job.status is JobStatus.SUCCEEDED
    assert isinstance(job.result, dict)
    report = settings.reports_dir / job.result["artifact"]

    async def deleted() -> bool:
        return not report.exists()

    await wait_for(deleted, 30, "the worker to delete the expired report")
    api = api_settings(redis_url, prefix, reports_dir=settings.reports_dir, report_ttl_seconds=1)
    async with serve(api) as client:
        problem = assert_problem(await client.get(f"/jobs/{job_id}/artifact"), 410)
    assert problem["type"] == "urn:taskq:problem:artifact-expired"
    assert "kept 1 s" in problem["detail"]


def test_a_sweep_deletes_only_old_files_and_at_most_its_limit(tmp_path: Path) -> None:
    old = [tmp_path / f"old-{i}.csv" for i in range(5)]
    fresh = [tmp_path / "fresh.csv", tmp_path / ".fresh.csv.1.tmp"]
    an_hour_ago = time.time() - 3600
    for path in (*old, *fresh):
        path.write_text("x")
    for path in old:
        os.utime(path, (an_hour_ago, an_hour_ago))
    (tmp_path / "subdir").mkdir()
    os.utime(tmp_path / "subdir", (an_hour_ago, an_hour_ago))

    assert sweep_reports(tmp_path, 60, limit=3) == 3
    assert sweep_reports(tmp_path, 60, limit=3) == 2
    assert sweep_reports(tmp_path, 60, limit=3) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fresh.csv.1.tmp", "fresh.csv", "subdir"]
    assert sweep_reports(tmp_path / "missing", 60) == 0
