"""GET /queues, /workers, /tasks and the dead-letter endpoints."""

from __future__ import annotations

import httpx
import pytest

from producer.testing import EMAIL, assert_problem
from taskq import JobError, Taskq
from taskq.workers import WorkerBeat, beat


async def test_queues_report_depth_counters_and_age(
    client: httpx.AsyncClient, taskq: Taskq, queue_name: str
) -> None:
    assert (await client.get("/queues")).json() == []
    for _ in range(3):
        await client.post("/jobs", json={"task": "debug.noop", "queue": queue_name})
    await client.post("/jobs", json={"task": "debug.noop", "queue": queue_name, "delay_seconds": 60})
    await taskq.claim(queue_name, "w")
    (queue,) = (await client.get("/queues")).json()
    assert {k: queue[k] for k in ("queue", "pending", "scheduled", "running", "dead")} == {
        "queue": queue_name, "pending": 2, "scheduled": 1, "running": 1, "dead": 0,
    }  # fmt: skip
    assert (queue["processed_total"], queue["failed_total"], queue["counters"]["enqueued"]) == (0, 0, 4)
    assert queue["oldest_pending_age_seconds"] >= 0
    one = (await client.get(f"/queues/{queue_name}")).json()
    assert {**one, "oldest_pending_age_seconds": 0} == {**queue, "oldest_pending_age_seconds": 0}
    assert_problem(await client.get("/queues/never-used"), 404)
    assert_problem(await client.get("/queues/bad{name}"), 422)


async def test_workers_lists_live_workers(client: httpx.AsyncClient, taskq: Taskq) -> None:
    assert (await client.get("/workers")).json() == []
    await beat(taskq, WorkerBeat("w-1", "host-a", 42, 1_700_000_000_000, 8, ("default",), ("job-1",)), 10_000)
    (worker,) = (await client.get("/workers")).json()
    assert (worker["id"], worker["host"], worker["concurrency"], worker["jobs"]) == (
        "w-1",
        "host-a",
        8,
        ["job-1"],
    )
    assert worker["started_at"].startswith("2023-11-14")
    assert worker["last_heartbeat"]


async def test_tasks_lists_the_contract_with_schemas(client: httpx.AsyncClient, make_client: object) -> None:
    tasks = {t["name"]: t for t in (await client.get("/tasks")).json()}
    assert {"send_email", "generate_report", "call_webhook", "debug.noop"} <= tasks.keys()
    assert set(tasks["send_email"]["args_schema"]["required"]) == set(EMAIL)
    assert (await client.get("/tasks/send_email")).json() == tasks["send_email"]
    assert_problem(await client.get("/tasks/nope"), 404)


async def test_debug_tasks_are_hidden_and_refused_unless_enabled(make_client: object) -> None:
    async with make_client(debug_tasks=False) as client:  # type: ignore[operator]
        names = {t["name"] for t in (await client.get("/tasks")).json()}
        assert not any(n.startswith("debug.") for n in names)
        assert_problem(await client.post("/jobs", json={"task": "debug.crash"}), 422)


async def _dead_job(client: httpx.AsyncClient, taskq: Taskq, queue: str, message: str = "boom") -> str:
    job_id: str = (await client.post("/jobs", json={"task": "debug.noop", "queue": queue})).json()["id"]
    claimed = (await taskq.claim(queue, "w")).jobs[0]
    error = JobError(type="RuntimeError", message=message)
    await taskq.fail(queue, job_id, claimed.token, error, retryable=False, reason="non_retryable")
    return job_id


async def test_dead_letter_lists_pages_retries_and_purges(
    client: httpx.AsyncClient, taskq: Taskq, queue_name: str
) -> None:
    ids = [await _dead_job(client, taskq, queue_name, f"boom {i}") for i in range(5)]
    page = (await client.get("/dead-letter", params={"queue": queue_name, "limit": 2})).json()
    seen = [j["id"] for j in page["items"]]
    assert page["items"][0]["status"] == "failed"
    assert page["items"][0]["error"]["reason"] == "non_retryable"
    while page["next_cursor"]:
        params = {"queue": queue_name, "limit": 2, "cursor": page["next_cursor"]}
        page = (await client.get("/dead-letter", params=params)).json()
        seen += [j["id"] for j in page["items"]]
    assert sorted(seen) == sorted(ids)

    retried = await client.post(f"/dead-letter/{ids[0]}/retry")
    assert retried.status_code == 202
    assert (retried.json()["status"], retried.json()["attempts"]) == ("queued", 0)
    assert (await taskq.stats(queue_name)).pending == 1
    assert_problem(await client.post(f"/dead-letter/{ids[0]}/retry"), 409)

    assert (await client.delete(f"/dead-letter/{ids[1]}")).status_code == 204
    assert_problem(await client.get(f"/jobs/{ids[1]}"), 404)
    assert_problem(await client.delete(f"/dead-letter/{ids[1]}"), 404)
    assert (await taskq.stats(queue_name)).dead == 3


async def test_dead_letter_defaults_to_the_default_queue(client: httpx.AsyncClient, taskq: Taskq) -> None:
    job_id = await _dead_job(client, taskq, "default")
    assert [j["id"] for j in (await client.get("/dead-letter")).json()["items"]] == [job_id]


@pytest.mark.parametrize(
    "params",
    [
        {"queue": "a:b"},
        {"limit": 0},
        {"limit": 501},
        {"cursor": "x"},
        {"cursor": "1:2:3"},
        {"cursor": "-1:0"},
    ],
)
async def test_dead_letter_bad_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, object]
) -> None:
    assert_problem(await client.get("/dead-letter", params=params), 422)  # type: ignore[arg-type]


async def test_dead_letter_on_unknown_or_malformed_ids(client: httpx.AsyncClient) -> None:
    missing = "01936f6e-0000-7000-8000-000000000000"
    assert_problem(await client.post(f"/dead-letter/{missing}/retry"), 404)
    assert_problem(await client.delete(f"/dead-letter/{missing}"), 404)
    assert_problem(await client.post("/dead-letter/nope/retry"), 422)
