"""POST /jobs/batch: up to 1,000 jobs in one round trip, all valid or none enqueued."""

from __future__ import annotations

import httpx

from producer.testing import EMAIL, assert_problem
from taskq import Taskq


async def test_batch_enqueues_every_job(client: httpx.AsyncClient, taskq: Taskq, queue_name: str) -> None:
    jobs = [{"task": "debug.noop", "args": {"tag": str(i)}, "queue": queue_name} for i in range(1000)]
    response = await client.post("/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 202, response.text
    created = response.json()["jobs"]
    assert [j["args"]["tag"] for j in created] == [str(i) for i in range(1000)]
    assert len({j["id"] for j in created}) == 1000
    assert (await taskq.stats(queue_name)).pending == 1000


async def test_batch_mixes_queued_and_delayed_jobs(client: httpx.AsyncClient, taskq: Taskq) -> None:
    # One queue per batch (tests/producer/test_batch_one_queue_one_key.py: two queues are a 422).
    jobs = [
        {"task": "send_email", "args": EMAIL},
        {"task": "debug.noop", "queue": "default", "delay_seconds": 30},
    ]
    created = (await client.post("/jobs/batch", json={"jobs": jobs})).json()["jobs"]
    assert [(j["queue"], j["status"]) for j in created] == [("default", "queued"), ("default", "scheduled")]
    assert (await taskq.stats("default")).pending == 1
    assert (await taskq.stats("default")).scheduled == 1


async def test_one_bad_item_refuses_the_whole_batch_naming_it(
    client: httpx.AsyncClient, taskq: Taskq
) -> None:
    jobs: list[dict[str, object]] = [{"task": "debug.noop"}] * 5
    jobs[2] = {"task": "send_email", "args": {"recipient_email": "x"}}
    jobs[4] = {"task": "nope"}
    problem = assert_problem(await client.post("/jobs/batch", json={"jobs": jobs}), 422)
    locs = [e["loc"][:3] for e in problem["errors"]]
    assert ["body", "jobs", 2] in locs
    assert ["body", "jobs", 4] in locs
    assert await taskq.queues() == []


async def test_schema_errors_name_the_item(client: httpx.AsyncClient, taskq: Taskq) -> None:
    problem = assert_problem(
        await client.post(
            "/jobs/batch", json={"jobs": [{"task": "debug.noop"}, {"task": "debug.noop", "priority": 99}]}
        ),
        422,
    )
    assert problem["errors"][0]["loc"] == ["body", "jobs", 1, "priority"]
    assert await taskq.queues() == []


async def test_empty_and_oversized_batches_are_422(client: httpx.AsyncClient, taskq: Taskq) -> None:
    assert_problem(await client.post("/jobs/batch", json={"jobs": []}), 422)
    assert_problem(await client.post("/jobs/batch", json={"jobs": [{"task": "debug.noop"}] * 1001}), 422)
    assert await taskq.queues() == []
