"""Scheduling far ahead: ``run_at`` is held to the same one-year limit as ``delay_seconds``, and the
Idempotency-Key of a delayed job lives until the job is due plus the key's own TTL, so a retry made
while the job still waits gets that job back instead of a second one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from producer.testing import EMAIL, assert_problem
from taskq import QueueKeys, Taskq

JOB = {"task": "send_email", "args": EMAIL}


def _in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def test_run_at_past_a_year_is_422_naming_run_at(client: httpx.AsyncClient, taskq: Taskq) -> None:
    problem = assert_problem(await client.post("/jobs", json={**JOB, "run_at": _in(366)}), 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "run_at"]]
    batch = {"jobs": [JOB, {**JOB, "run_at": _in(400)}]}
    problem = assert_problem(await client.post("/jobs/batch", json=batch), 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "jobs", 1, "run_at"]]
    assert await taskq.queues() == []
    accepted = await client.post("/jobs", json={**JOB, "run_at": _in(364)})
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "scheduled"


async def test_the_key_of_a_delayed_job_outlives_its_due_time(
    make_client: Any, redis: Redis, prefix: str
) -> None:
    ttl_s, delay_s = 60, 3 * 86_400
    async with make_client(idempotency_ttl_seconds=ttl_s) as client:
        headers = {"Idempotency-Key": "renewal-7"}
        first = await client.post("/jobs", json={**JOB, "delay_seconds": delay_s}, headers=headers)
        assert first.status_code == 202
        left_ms = await redis.pttl(QueueKeys(prefix, "default").idempotency("renewal-7"))
        # The key expires no sooner than the job's due time plus the key's TTL (less the test's own
        # few seconds); with the plain TTL it was gone 3 days before the job ran.
        assert left_ms > (delay_s + ttl_s - 30) * 1000
        again = await client.post("/jobs", json={**JOB, "delay_seconds": delay_s}, headers=headers)
        assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
