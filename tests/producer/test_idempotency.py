"""Idempotency-Key: a retried request yields one job, sequentially or 50 at once; a reused key with
another body is refused; a malformed key is a 400."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from producer.testing import EMAIL, assert_problem
from taskq import Taskq

JOB = {"task": "send_email", "args": EMAIL, "priority": 3}


async def test_repeat_with_the_same_key_returns_the_same_job(client: httpx.AsyncClient, taskq: Taskq) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post("/jobs", json=JOB, headers=headers)
    again = await client.post("/jobs", json=JOB, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert again.json() == first.json()
    assert (await taskq.stats("default")).counters["enqueued"] == 1


async def test_repeat_answers_the_same_body_after_the_job_moved_on(
    client: httpx.AsyncClient, taskq: Taskq
) -> None:
    headers = {"Idempotency-Key": "order-44"}
    delayed = {**JOB, "delay_seconds": 30}
    first = await client.post("/jobs", json=delayed, headers=headers)
    await taskq.cancel(first.json()["id"])  # the job is no longer what it was when accepted
    again = await client.post("/jobs", json=delayed, headers=headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["status"] == "scheduled"


async def test_same_key_with_another_body_is_422(client: httpx.AsyncClient, taskq: Taskq) -> None:
    headers = {"Idempotency-Key": "order-43"}
    assert (await client.post("/jobs", json=JOB, headers=headers)).status_code == 202
    problem = assert_problem(await client.post("/jobs", json={**JOB, "priority": 4}, headers=headers), 422)
    assert problem["type"].endswith("idempotency-conflict")
    assert (await taskq.stats("default")).counters["enqueued"] == 1


async def test_different_keys_make_different_jobs(client: httpx.AsyncClient) -> None:
    a = await client.post("/jobs", json=JOB, headers={"Idempotency-Key": "a"})
    b = await client.post("/jobs", json=JOB, headers={"Idempotency-Key": "b"})
    assert a.json()["id"] != b.json()["id"]


async def test_fifty_concurrent_requests_with_one_key_make_one_job(
    client: httpx.AsyncClient, taskq: Taskq
) -> None:
    headers = {"Idempotency-Key": "burst-1"}
    responses = await asyncio.gather(*(client.post("/jobs", json=JOB, headers=headers) for _ in range(50)))
    assert sorted(r.status_code for r in responses) == [200] * 49 + [202]
    assert len({r.json()["id"] for r in responses}) == 1
    stats = await taskq.stats("default")
    assert (stats.pending, stats.counters["enqueued"]) == (1, 1)


async def test_fifty_concurrent_send_emails_with_one_key_make_one_job(
    client: httpx.AsyncClient, taskq: Taskq
) -> None:
    headers = {"Idempotency-Key": "burst-2"}
    responses = await asyncio.gather(
        *(client.post("/send-email", json=EMAIL, headers=headers) for _ in range(50))
    )
    assert len({r.json()["job_id"] for r in responses}) == 1
    assert (await taskq.stats("default")).counters["enqueued"] == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "bad{brace}", "star*", "naïve"])
async def test_malformed_key_is_400(client: httpx.AsyncClient, taskq: Taskq, key: str) -> None:
    headers = [(b"Idempotency-Key", key.encode())]
    response = await client.post("/jobs", json=JOB, headers=headers)
    assert_problem(response, 400)
    assert_problem(await client.post("/send-email", json=EMAIL, headers=headers), 400)
    assert await taskq.queues() == []


async def test_batch_repeat_returns_the_same_jobs(client: httpx.AsyncClient, taskq: Taskq) -> None:
    batch = {"jobs": [JOB, {"task": "debug.noop"}]}
    headers = {"Idempotency-Key": "batch-7"}
    first = await client.post("/jobs/batch", json=batch, headers=headers)
    again = await client.post("/jobs/batch", json=batch, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    other = {"jobs": [JOB, {"task": "debug.noop", "priority": 1}]}
    assert_problem(await client.post("/jobs/batch", json=other, headers=headers), 422)
    assert (await taskq.stats("default")).counters["enqueued"] == 2
