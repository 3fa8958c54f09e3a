"""The enqueue hot path (pure ASGI, coalesced round trips) answers exactly like the routes, and a
refusal is never the answer of a request whose job was written."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from redis.asyncio import Redis

from producer.testing import EMAIL
from taskq import Taskq


def _without(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in names}


async def test_hot_path_and_routes_answer_alike(client: httpx.AsyncClient) -> None:
    job = {"task": "send_email", "args": EMAIL, "priority": 8, "delay_seconds": 5, "max_attempts": 2}
    fast = await client.post("/jobs", json=job)
    # An Idempotency-Key sends the same request through the FastAPI route instead.
    routed = await client.post("/jobs", json=job, headers={"Idempotency-Key": "k1"})
    assert fast.status_code == routed.status_code == 202
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    volatile = ("id", "created_at", "scheduled_at", "idempotency_key")
    assert _without(fast.json(), *volatile) == _without(routed.json(), *volatile)
    assert list(fast.json()) == list(routed.json())

    email_fast = await client.post("/send-email", json=EMAIL)
    email_routed = await client.post("/send-email", json=EMAIL, headers={"Idempotency-Key": "k2"})
    assert _without(email_fast.json(), "job_id") == _without(email_routed.json(), "job_id")
    assert email_fast.headers["location"] == f"/jobs/{email_fast.json()['job_id']}"


async def _evalsha_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_requests_all_land_in_shared_round_trips(
    client: httpx.AsyncClient, taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    async def one(i: int) -> httpx.Response:
        if i % 2:
            return await client.post("/send-email", json={**EMAIL, "subject": f"s{i}"})
        return await client.post(
            "/jobs", json={"task": "debug.noop", "queue": queue_name, "args": {"tag": str(i)}}
        )

    responses = await asyncio.gather(*(one(i) for i in range(200)))
    assert {r.status_code for r in responses} == {202}
    ids = {r.json().get("id") or r.json()["job_id"] for r in responses}
    assert len(ids) == 200
    assert (await taskq.stats("default")).pending == 100
    assert (await taskq.stats(queue_name)).pending == 100
    for r in responses[:6]:
        job_id = r.json().get("id") or r.json()["job_id"]
        assert (await client.get(f"/jobs/{job_id}")).status_code == 200


async def test_a_burst_to_empty_queues_fills_each_to_its_depth_and_refuses_only_the_rest(
    make_client: Any, taskq: Taskq, queue_name: str
) -> None:
    """120 concurrent enqueues over two empty queues with QUEUE_MAX_DEPTH=30: the coalesced calls
    must not be refused whole. Each queue takes exactly 30 (30 answers of 202, 30 jobs stored) and
    only the other 30 get a 429 with Retry-After; every 202 is a stored job, every 429 stored nothing."""
    async with make_client(queue_max_depth=30) as client:
        queues = ["default", queue_name]
        responses = await asyncio.gather(
            *(client.post("/jobs", json={"task": "debug.noop", "queue": queues[i % 2]}) for i in range(120))
        )
    assert {r.status_code for r in responses} == {202, 429}
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 429)
    assert sum(r.status_code == 429 for r in responses) == 60
    for queue in queues:
        accepted = [r for r in responses if r.status_code == 202 and r.json()["queue"] == queue]
        assert len(accepted) == 30
        stats = await taskq.stats(queue)
        assert stats.pending == 30
        assert stats.counters.get("enqueued", 0) == 30
        assert {(await taskq.get_job(r.json()["id"], queue)) is not None for r in accepted} == {True}
