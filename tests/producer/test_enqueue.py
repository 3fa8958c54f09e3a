"""POST /send-email and POST /jobs: accepted jobs are in Redis; bad input is a 4xx and writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from producer.testing import EMAIL, assert_problem
from taskq import JobStatus, Taskq


async def test_send_email_keeps_the_original_contract(client: httpx.AsyncClient, taskq: Taskq) -> None:
    response = await client.post("/send-email", json=EMAIL)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["message"] == "Email task added to queue"
    assert response.headers["location"] == f"/jobs/{body['job_id']}"
    job = await taskq.get_job(body["job_id"])
    assert job is not None
    assert (job.task, job.args, job.status) == ("send_email", EMAIL, JobStatus.QUEUED)


async def test_post_job_returns_the_job_and_its_location(client: httpx.AsyncClient, taskq: Taskq) -> None:
    request = {"task": "send_email", "args": EMAIL, "priority": 9, "max_attempts": 4, "timeout_seconds": 12.5}
    response = await client.post("/jobs", json=request)
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    for name in ("id", "task", "args", "queue", "priority", "status", "attempts", "max_attempts",
                 "timeout_seconds", "created_at", "scheduled_at", "started_at", "finished_at", "result",
                 "error", "progress", "worker"):  # fmt: skip
        assert name in job
    assert (job["status"], job["priority"], job["max_attempts"], job["timeout_seconds"]) == (
        "queued",
        9,
        4,
        12.5,
    )
    stored = await taskq.get_job(job["id"])
    assert stored is not None
    assert stored.priority == 9
    assert stored.max_attempts == 4
    read = (await client.get(f"/jobs/{job['id']}")).json()
    assert read["id"] == job["id"]
    assert read["args"] == EMAIL


async def test_delay_and_run_at_schedule_the_job(client: httpx.AsyncClient, taskq: Taskq) -> None:
    delayed = (await client.post("/jobs", json={"task": "debug.noop", "delay_seconds": 60})).json()
    assert delayed["status"] == "scheduled"
    scheduled_at = datetime.fromisoformat(delayed["scheduled_at"])
    assert timedelta(seconds=55) < scheduled_at - datetime.now(UTC) < timedelta(seconds=65)
    run_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = (await client.post("/jobs", json={"task": "debug.noop", "run_at": run_at})).json()
    assert later["status"] == "scheduled"
    stats = await taskq.stats("default")
    assert (stats.scheduled, stats.pending) == (2, 0)
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (await client.post("/jobs", json={"task": "debug.noop", "run_at": past})).json()[
        "status"
    ] == "queued"


async def test_queue_defaults_to_the_task_queue_and_can_be_chosen(
    client: httpx.AsyncClient, taskq: Taskq, queue_name: str
) -> None:
    assert (await client.post("/jobs", json={"task": "debug.noop"})).json()["queue"] == "default"
    job = (await client.post("/jobs", json={"task": "debug.noop", "queue": queue_name})).json()
    assert job["queue"] == queue_name
    assert (await taskq.stats(queue_name)).pending == 1


BAD_JOBS: list[tuple[str, Any, list[str | int]]] = [
    ("unknown task", {"task": "os.system", "args": {}}, ["body", "task"]),
    ("missing field", {"args": {}}, ["body", "task"]),
    ("unknown field", {"task": "debug.noop", "extra": 1}, ["body", "extra"]),
    ("wrong type", {"task": "debug.noop", "priority": "high"}, ["body", "priority"]),
    ("priority above 9", {"task": "debug.noop", "priority": 10}, ["body", "priority"]),
    ("negative priority", {"task": "debug.noop", "priority": -1}, ["body", "priority"]),
    ("negative delay", {"task": "debug.noop", "delay_seconds": -1}, ["body", "delay_seconds"]),
    ("zero attempts", {"task": "debug.noop", "max_attempts": 0}, ["body", "max_attempts"]),
    ("zero timeout", {"task": "debug.noop", "timeout_seconds": 0}, ["body", "timeout_seconds"]),
    ("naive run_at", {"task": "debug.noop", "run_at": "2030-01-01T00:00:00"}, ["body", "run_at"]),
    ("bad queue name", {"task": "debug.noop", "queue": "a{b}:*"}, ["body", "queue"]),
    (
        "bad args",
        {"task": "send_email", "args": {"recipient_email": "nope"}},
        ["body", "args", "recipient_email"],
    ),
    ("unknown arg", {"task": "debug.noop", "args": {"tag": "x", "evil": 1}}, ["body", "args", "evil"]),
    ("over-long string", {"task": "debug.noop", "args": {"tag": "x" * 201}}, ["body", "args", "tag"]),
    ("huge array", {"task": "generate_report", "args": {"queues": ["q"] * 101}}, ["body", "args", "queues"]),
    ("args not an object", {"task": "debug.noop", "args": [1, 2]}, ["body", "args"]),
    (
        "both schedules",
        {"task": "debug.noop", "delay_seconds": 1, "run_at": "2030-01-01T00:00:00Z"},
        ["body"],
    ),
]


@pytest.mark.parametrize(("case", "body", "loc"), BAD_JOBS, ids=[c[0] for c in BAD_JOBS])
async def test_invalid_jobs_are_422_naming_the_field_and_write_nothing(
    client: httpx.AsyncClient, taskq: Taskq, case: str, body: Any, loc: list[str | int]
) -> None:
    problem = assert_problem(await client.post("/jobs", json=body), 422)
    assert any(error["loc"][: len(loc)] == loc for error in problem["errors"]), problem["errors"]
    assert await taskq.queues() == []


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"task": "debug.noop", "args": {"x": NaN}}',
     b'{"task": "debug.noop", "priority": Infinity}', b'{"task": "debug.noop", "args": {"x": 1e400}}',
     b"[" * 5000, b'"just a string"', b""],
    ids=["malformed", "nan", "infinity", "overflow", "deep nesting", "not an object", "empty"],
)  # fmt: skip
async def test_non_json_bodies_are_422(client: httpx.AsyncClient, taskq: Taskq, raw: bytes) -> None:
    response = await client.post("/jobs", content=raw, headers={"content-type": "application/json"})
    assert_problem(response, 422)
    assert await taskq.queues() == []


async def test_send_email_validates_its_fields(client: httpx.AsyncClient, taskq: Taskq) -> None:
    for body in (
        {**EMAIL, "recipient_email": "not-an-email"},
        {**EMAIL, "subject": ""},
        {**EMAIL, "subject": "s" * 999},
        {**EMAIL, "cc": "x@example.com"},
        {"subject": "s", "body": "b"},
    ):
        assert_problem(await client.post("/send-email", json=body), 422)
    assert await taskq.queues() == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_wrong_content_type_is_415(client: httpx.AsyncClient, taskq: Taskq, content_type: str) -> None:
    response = await client.post(
        "/jobs", content=b'{"task": "debug.noop"}', headers={"content-type": content_type}
    )
    assert_problem(response, 415)
    response = await client.post(
        "/send-email", content=b"recipient_email=a", headers={"content-type": content_type}
    )
    assert_problem(response, 415)
    assert await taskq.queues() == []


async def test_json_with_charset_and_vendor_json_types_are_accepted(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.taskq+json"):
        response = await client.post(
            "/jobs", content=b'{"task": "debug.noop"}', headers={"content-type": content_type}
        )
        assert response.status_code == 202, response.text


async def test_queue_full_is_429_with_retry_after(make_client: Any, taskq: Taskq) -> None:
    async with make_client(queue_max_depth=2) as client:
        for _ in range(2):
            assert (await client.post("/jobs", json={"task": "debug.noop"})).status_code == 202
        response = await client.post("/send-email", json=EMAIL)
        problem = assert_problem(response, 429)
        assert int(response.headers["retry-after"]) > 0
        assert problem["type"].endswith("queue-full")
    assert (await taskq.stats("default")).pending == 2
