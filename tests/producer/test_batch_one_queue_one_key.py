"""A batch is all-or-none because it is one queue's atomic write: a batch naming two queues is a 422
that writes nothing (two queues' writes can never be one, least of all on a Redis Cluster, where
their keys live in different slots). And an Idempotency-Key names one request whatever queue it goes
to: the same key with another body is refused on any queue, any route, even after the first request
was refused once its key was recorded."""

from __future__ import annotations

from typing import Any

import httpx

from producer.testing import EMAIL, assert_problem
from taskq import Taskq

JOB = {"task": "send_email", "args": EMAIL}


async def test_a_batch_naming_two_queues_is_422_and_writes_nothing(
    client: httpx.AsyncClient, taskq: Taskq, queue_name: str
) -> None:
    jobs = [JOB, {"task": "debug.noop", "queue": queue_name}, {"task": "debug.noop", "queue": "default"}]
    problem = assert_problem(await client.post("/jobs/batch", json={"jobs": jobs}), 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "jobs", 1, "queue"]]
    assert "one queue" in problem["errors"][0]["msg"]
    assert (await taskq.stats("default")).counters.get("enqueued", 0) == 0
    assert (await taskq.stats(queue_name)).counters.get("enqueued", 0) == 0
    # One queue per batch is accepted, the queue named or the tasks' own.
    same = [JOB, {"task": "debug.noop", "queue": "default"}]
    assert (await client.post("/jobs/batch", json={"jobs": same})).status_code == 202


async def test_one_key_with_another_body_is_refused_on_any_queue_and_route(
    client: httpx.AsyncClient, taskq: Taskq, queue_name: str
) -> None:
    key = {"Idempotency-Key": "order-77"}
    first = await client.post("/jobs", json=JOB, headers=key)
    assert first.status_code == 202
    elsewhere = {"task": "debug.noop", "queue": queue_name}
    for path, body in [
        ("/jobs", elsewhere),
        ("/jobs/batch", {"jobs": [elsewhere]}),
        ("/jobs/batch", {"jobs": [JOB]}),
        ("/send-email", EMAIL),
    ]:
        problem = assert_problem(await client.post(path, json=body, headers=key), 422)
        assert problem["type"].endswith("idempotency-conflict"), path
    assert (await taskq.stats(queue_name)).counters.get("enqueued", 0) == 0
    assert (await taskq.stats("default")).counters["enqueued"] == 1
    again = await client.post("/jobs", json=JOB, headers=key)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])


async def test_a_key_refused_after_it_was_recorded_still_names_its_request(
    make_client: Any, taskq: Taskq, queue_name: str
) -> None:
    """The key's record is written before the queue's script: when the script then refuses (here a
    full queue, as a crash between the two would), the same request sent again is accepted once the
    queue has room, and another request under that key is refused on every queue."""
    async with make_client(queue_max_depth=1) as client:
        blocker = await client.post("/jobs", json={"task": "debug.noop"})
        key = {"Idempotency-Key": "retry-me"}
        assert_problem(await client.post("/jobs", json=JOB, headers=key), 429)
        other = {"task": "debug.noop", "queue": queue_name}
        assert_problem(await client.post("/jobs", json=other, headers=key), 422)
        assert (await client.delete(f"/jobs/{blocker.json()['id']}")).status_code == 200
        retried = await client.post("/jobs", json=JOB, headers=key)
        assert retried.status_code == 202
        assert (await client.get(f"/jobs/{retried.json()['id']}")).status_code == 200
    assert (await taskq.stats(queue_name)).counters.get("enqueued", 0) == 0
