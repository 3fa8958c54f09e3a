"""Queues must be declared (QUEUES): a job naming any other queue is a 422 that names the field and
the accepted queues, and nothing reaches Redis (no keys, no registry entry), on every enqueue path."""

from __future__ import annotations

from typing import Any

import pytest

from producer.testing import EMAIL, assert_problem
from taskq import Taskq

GHOST = "ghost-queue"


async def _nothing_written(taskq: Taskq, queue: str) -> None:
    qk = taskq.keys.queue(queue)
    assert await taskq.redis.exists(qk.pending, qk.scheduled, qk.stats, qk.marker) == 0
    assert queue not in await taskq.queues()


@pytest.mark.parametrize("idempotency_key", [None, "k-1"], ids=["fast path", "route with a key"])
async def test_post_job_to_an_undeclared_queue_is_422_listing_the_declared_ones(
    make_client: Any, taskq: Taskq, idempotency_key: str | None
) -> None:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    async with make_client(queues="emails,reports") as client:
        response = await client.post("/jobs", json={"task": "debug.noop", "queue": GHOST}, headers=headers)
        problem = assert_problem(response, 422)
        (error,) = problem["errors"]
        assert error["loc"] == ["body", "queue"]
        assert error["type"] == "queue_not_declared"
        assert GHOST in error["msg"]
        assert "default, emails, reports" in error["msg"]
        await _nothing_written(taskq, GHOST)
        # The declared ones are accepted, and "default" is always declared (the tasks' own queue).
        for queue in ("emails", "default"):
            accepted = await client.post("/jobs", json={"task": "debug.noop", "queue": queue})
            assert accepted.status_code == 202, accepted.text
        assert (await client.post("/send-email", json=EMAIL)).status_code == 202


async def test_batch_with_one_undeclared_queue_is_refused_whole(make_client: Any, taskq: Taskq) -> None:
    jobs = [
        {"task": "debug.noop", "queue": "emails"},
        {"task": "debug.noop", "queue": GHOST},
        {"task": "debug.noop"},
    ]
    async with make_client(queues="emails") as client:
        problem = assert_problem(await client.post("/jobs/batch", json={"jobs": jobs}), 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "jobs", 1, "queue"]]
    # All or none: the valid items of the batch were not written either.
    await _nothing_written(taskq, GHOST)
    for queue in ("emails", "default"):
        assert (await taskq.stats(queue)).counters.get("enqueued", 0) == 0


async def test_producer_refuses_to_start_with_a_malformed_declaration(make_client: Any) -> None:
    with pytest.raises(ValueError, match="QUEUES"):
        async with make_client(queues="emails,a{b}"):
            pass
    with pytest.raises(ValueError, match="QUEUES"):
        async with make_client(queues="*", environment="production"):
            pass


async def test_jobs_left_in_a_queue_no_longer_declared_stay_visible(make_client: Any, taskq: Taskq) -> None:
    # Written before the queue was dropped from QUEUES (core's own client accepts any name).
    await taskq.enqueue("debug.noop", queue="legacy")
    async with make_client(queues="emails") as client:
        views = {v["queue"]: v for v in (await client.get("/queues")).json()}
        one = (await client.get("/queues/legacy")).json()
    assert (views["legacy"]["declared"], views["legacy"]["pending"]) == (False, 1)
    assert one["pending"] == 1
    # A declared queue is listed before its first job.
    assert (views["emails"]["declared"], views["emails"]["pending"]) == (True, 0)


async def test_openapi_lists_the_declared_queues(make_client: Any) -> None:
    # A client (or a fuzzer) reading the schema must not expect another queue to be accepted.
    async with make_client(queues="emails") as client:
        schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    queue = schemas["JobRequest.debug.noop"]["properties"]["queue"]
    assert {"type": "string", "enum": ["default", "emails"]} in queue["anyOf"]
