"""Queue controls over HTTP: pause and resume (shown in /queues and /metrics), a confirmed purge, the
removal of an empty idle queue; unknown queues are 404s, a busy one a 409, an unconfirmed purge a 422,
and every route wants the token like the rest of the API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from producer.testing import assert_problem
from taskq import Taskq
from taskq.workers import WorkerBeat, beat

TOKEN = "queue-controls-token-0123456789"


async def _enqueue(client: httpx.AsyncClient, queue: str, **extra: Any) -> str:
    response = await client.post("/jobs", json={"task": "debug.noop", "queue": queue, **extra})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def test_pause_and_resume_show_in_queues_and_metrics(
    client: httpx.AsyncClient, taskq: Taskq, queue_name: str
) -> None:
    await _enqueue(client, queue_name)
    assert (await client.get(f"/queues/{queue_name}")).json()["paused"] is False

    paused = await client.post(f"/queues/{queue_name}/pause")
    assert paused.status_code == 200, paused.text
    doc = paused.json()
    assert (doc["queue"], doc["paused"], doc["pending"]) == (queue_name, True, 1)
    assert (await client.post(f"/queues/{queue_name}/pause")).json()["paused"] is True  # idempotent
    await _enqueue(client, queue_name)  # still accepts jobs
    assert (await taskq.claim(queue_name, "w", 5)).jobs == []  # and no worker takes them

    listed = {q["queue"]: q for q in (await client.get("/queues")).json()}
    assert listed[queue_name]["paused"] is True
    assert listed[queue_name]["pending"] == 2
    assert f'taskq_queue_paused{{queue="{queue_name}"}} 1.0' in (await client.get("/metrics")).text

    resumed = await client.post(f"/queues/{queue_name}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["paused"] is False
    assert (await client.post(f"/queues/{queue_name}/resume")).json()["paused"] is False
    assert f'taskq_queue_paused{{queue="{queue_name}"}} 0.0' in (await client.get("/metrics")).text
    assert len((await taskq.claim(queue_name, "w", 5)).jobs) == 2


async def test_purge_needs_the_queue_name_as_confirmation(
    client: httpx.AsyncClient, taskq: Taskq, queue_name: str
) -> None:
    jobs = [await _enqueue(client, queue_name) for _ in range(3)]
    later = await _enqueue(client, queue_name, delay_seconds=60)

    for body in (None, {"confirm": "other"}):
        refused = await client.post(f"/queues/{queue_name}/purge", json=body)
        problem = assert_problem(refused, 422)
        assert f'"confirm": "{queue_name}"' in problem["detail"]
        assert problem["errors"][0]["loc"] == ["body", "confirm"]
    assert (await client.get(f"/queues/{queue_name}")).json()["pending"] == 3  # nothing purged

    done = await client.post(f"/queues/{queue_name}/purge", json={"confirm": queue_name})
    assert done.status_code == 200, done.text
    assert done.json() == {"queue": queue_name, "purged": 3}
    view = (await client.get(f"/queues/{queue_name}")).json()
    assert (view["pending"], view["scheduled"], view["counters"]["purged"]) == (0, 1, 3)
    for job_id in jobs:
        assert_problem(await client.get(f"/jobs/{job_id}"), 404)
    assert (await client.get(f"/jobs/{later}")).status_code == 200
    assert f'taskq_jobs_purged_total{{queue="{queue_name}"}} 3.0' in (await client.get("/metrics")).text


async def test_delete_removes_an_empty_idle_queue_and_refuses_a_busy_one(
    client: httpx.AsyncClient, taskq: Taskq, queue_name: str
) -> None:
    await _enqueue(client, queue_name)
    busy = assert_problem(await client.delete(f"/queues/{queue_name}"), 409)
    assert "1 pending" in busy["detail"]

    await client.post(f"/queues/{queue_name}/purge", json={"confirm": queue_name})
    await beat(taskq, WorkerBeat("w1", "h", 1, int(time.time() * 1000), 1, (queue_name,), ()), ttl_ms=60_000)
    served = assert_problem(await client.delete(f"/queues/{queue_name}"), 409)
    assert "live worker" in served["detail"]
    await taskq.redis.delete(taskq.keys.worker("w1"))  # the worker is gone

    gone = await client.delete(f"/queues/{queue_name}")
    assert gone.status_code == 204, gone.text
    assert queue_name not in {q["queue"] for q in (await client.get("/queues")).json()}
    assert_problem(await client.get(f"/queues/{queue_name}"), 404)


async def test_a_removed_declared_queue_is_listed_again_with_zeros(make_client: Any, queue_name: str) -> None:
    async with make_client(queues=queue_name) as client:
        await _enqueue(client, queue_name)
        await client.post(f"/queues/{queue_name}/purge", json={"confirm": queue_name})
        assert (await client.delete(f"/queues/{queue_name}")).status_code == 204
        [view] = [q for q in (await client.get("/queues")).json() if q["queue"] == queue_name]
    assert (view["queue"], view["declared"], view["pending"], view["counters"]) == (queue_name, True, 0, {})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/queues/nope/pause", None),
        ("POST", "/queues/nope/resume", None),
        ("POST", "/queues/nope/purge", {"confirm": "nope"}),
        ("DELETE", "/queues/nope", None),
    ],
)
async def test_unknown_queues_are_404_and_every_route_wants_the_token(
    make_client: Any, method: str, path: str, body: Any
) -> None:
    async with make_client(api_token=TOKEN) as client:
        assert_problem(await client.request(method, path, json=body), 401)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        problem = assert_problem(await client.request(method, path, json=body, headers=auth), 404)
    assert problem["type"] == "urn:taskq:problem:queue-not-found"


async def test_openapi_documents_the_controls_and_their_problems(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"404", "409"} <= paths["/queues/{queue}"]["delete"]["responses"].keys()
    assert {"404", "422"} <= paths["/queues/{queue}/purge"]["post"]["responses"].keys()
    for action in ("pause", "resume"):
        assert "404" in paths[f"/queues/{{queue}}/{action}"]["post"]["responses"]
