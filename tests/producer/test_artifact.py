"""GET /jobs/{id}/artifact: the report a job wrote, served with its content type, and nothing else:
no file outside REPORTS_DIR, no file for a job that has not succeeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from producer.testing import assert_problem
from taskq import Ack, Taskq
from taskq.models import dumps


async def finish(taskq: Taskq, result: dict[str, Any]) -> str:
    enq = await taskq.enqueue("generate_report", {"title": "t"})
    job = (await taskq.claim("default", "w", 1)).jobs[0]
    await taskq.complete("default", [Ack(job.id, job.token, dumps(result))])
    return enq.id


async def test_report_is_served_as_csv(make_client: Any, taskq: Taskq, tmp_path: Path) -> None:
    enq = await taskq.enqueue("generate_report", {"title": "t"})
    (tmp_path / f"{enq.id}.csv").write_text("queue,pending\ndefault,3\n")
    async with make_client(reports_dir=tmp_path) as client:
        assert_problem(await client.get(f"/jobs/{enq.id}/artifact"), 409)  # not run yet
        job = (await taskq.claim("default", "w", 1)).jobs[0]
        result = {"artifact": f"{enq.id}.csv", "content_type": "text/csv"}
        await taskq.complete("default", [Ack(job.id, job.token, dumps(result))])
        response = await client.get(f"/jobs/{enq.id}/artifact")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text == "queue,pending\ndefault,3\n"


async def test_no_file_outside_the_reports_dir(make_client: Any, taskq: Taskq, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (tmp_path / "secret.csv").write_text("top secret")
    (reports / "link.csv").symlink_to(tmp_path / "secret.csv")
    async with make_client(reports_dir=reports) as client:
        for name in ("../secret.csv", "/etc/passwd", "link.csv", ".", ""):
            job_id = await finish(taskq, {"artifact": name, "content_type": "text/csv"})
            response = await client.get(f"/jobs/{job_id}/artifact")
            assert_problem(response, 404)
            assert "top secret" not in response.text


async def test_missing_artifact_and_unknown_jobs(make_client: Any, taskq: Taskq, tmp_path: Path) -> None:
    async with make_client(reports_dir=tmp_path) as client:
        no_file = await finish(taskq, {"rows": 3})
        assert_problem(await client.get(f"/jobs/{no_file}/artifact"), 404)
        gone = await finish(taskq, {"artifact": "gone.csv", "content_type": "text/csv"})
        assert_problem(await client.get(f"/jobs/{gone}/artifact"), 404)
        assert_problem(await client.get("/jobs/01234567-89ab-7def-8123-456789abcdef/artifact"), 404)
        assert_problem(await client.get("/jobs/not-a-uuid/artifact"), 422)


async def test_artifact_needs_the_token(make_client: Any, taskq: Taskq, tmp_path: Path) -> None:
    job_id = await finish(taskq, {"rows": 1})
    async with make_client(api_token="s3cret-token-for-tests-only", reports_dir=tmp_path) as client:
        response: httpx.Response = await client.get(f"/jobs/{job_id}/artifact")
        assert_problem(response, 401)
