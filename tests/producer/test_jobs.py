"""GET /jobs/{id} (with ?wait woken by the job's event) and DELETE /jobs/{id} (cancel)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from producer.testing import assert_problem
from taskq import Ack, JobError, Taskq

MISSING = "01936f6e-0000-7000-8000-000000000000"
#: From the complete call's return to the waiting response: a Pub/Sub message, one GET, one reply.
#: This bound is the feature itself: any polling or re-check period (the subscriber's 1 s grace,
#: a timer) would exceed it, while a loaded 2-core box still wakes in tens of milliseconds.
WOKEN_WITHIN = 0.5


async def _enqueue(client: httpx.AsyncClient, **extra: object) -> str:
    response = await client.post("/jobs", json={"task": "debug.noop", **extra})
    assert response.status_code == 202
    job_id: str = response.json()["id"]
    return job_id


async def _subscribed(client: httpx.AsyncClient) -> asyncio.Event:
    """The app's flag for a live event subscription, once it is set. The app subscribes once started,
    and until then ?wait= on a job still running answers after a 1 s grace instead of parking (a slow
    start on a loaded box): park requests only once it is."""
    app: Any = client._transport.app  # type: ignore[attr-defined]
    ready: asyncio.Event = app.state.events.ready
    async with asyncio.timeout(10):
        await ready.wait()
    return ready


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"/jobs/{MISSING}"), 404)
    assert_problem(await client.get(f"/jobs/{MISSING}?wait=5"), 404)
    assert_problem(await client.delete(f"/jobs/{MISSING}"), 404)


@pytest.mark.parametrize("bad", ["abc", "*", "01936F6E-0000-7000-8000-000000000000", "x" * 500, "%7B%7D"])
async def test_malformed_job_id_is_422(client: httpx.AsyncClient, bad: str) -> None:
    problem = assert_problem(await client.get(f"/jobs/{bad}"), 422)
    assert problem["errors"][0]["loc"] == ["path", "job_id"]
    assert_problem(await client.delete(f"/jobs/{bad}"), 422)


@pytest.mark.parametrize("wait", ["-1", "61", "soon", "nan"])
async def test_wait_out_of_range_is_422(client: httpx.AsyncClient, wait: str) -> None:
    job_id = await _enqueue(client)
    assert_problem(await client.get(f"/jobs/{job_id}", params={"wait": wait}), 422)


async def test_wait_returns_as_soon_as_the_job_finishes(client: httpx.AsyncClient, taskq: Taskq) -> None:
    job_id = await _enqueue(client)
    await _subscribed(client)
    waiting = asyncio.create_task(client.get(f"/jobs/{job_id}", params={"wait": 30}))
    batch = await taskq.claim("default", "worker-1")
    assert [j.id for j in batch.jobs] == [job_id]
    # The request is parked on the event, not done: it only ends once the job does.
    done, _ = await asyncio.wait({waiting}, timeout=0.3)
    assert not done
    await taskq.complete("default", [Ack(job_id, batch.jobs[0].token, '"sent"')], worker_id="worker-1")
    completed = time.monotonic()  # only the wake-up is timed from here
    response = await asyncio.wait_for(waiting, timeout=5)
    assert time.monotonic() - completed < WOKEN_WITHIN
    job = response.json()
    assert (job["status"], job["result"], job["worker"], job["attempts"]) == (
        "succeeded",
        "sent",
        "worker-1",
        1,
    )
    assert job["finished_at"] is not None
    assert job["started_at"] is not None


async def test_one_batch_ack_wakes_every_waiter(client: httpx.AsyncClient, taskq: Taskq) -> None:
    ids = [await _enqueue(client) for _ in range(3)]
    await _subscribed(client)
    waiting = [asyncio.create_task(client.get(f"/jobs/{i}", params={"wait": 30})) for i in ids]
    batch = await taskq.claim("default", "worker-1", 3)
    done, _ = await asyncio.wait(waiting, timeout=0.3)
    assert not done
    await taskq.complete("default", [Ack(j.id, j.token) for j in batch.jobs], worker_id="worker-1")
    completed = time.monotonic()
    responses = await asyncio.wait_for(asyncio.gather(*waiting), timeout=5)
    assert time.monotonic() - completed < WOKEN_WITHIN  # woken by the one event, not by a re-check
    assert [r.json()["status"] for r in responses] == ["succeeded"] * 3


async def test_wait_also_ends_on_failure(client: httpx.AsyncClient, taskq: Taskq) -> None:
    job_id = await _enqueue(client, max_attempts=1)
    waiting = asyncio.create_task(client.get(f"/jobs/{job_id}", params={"wait": 30}))
    claimed = (await taskq.claim("default", "worker-1")).jobs[0]
    await taskq.fail(
        "default",
        job_id,
        claimed.token,
        JobError(type="ValueError", message="boom"),
        retryable=False,
        reason="non_retryable",
    )
    job = (await asyncio.wait_for(waiting, timeout=5)).json()
    assert job["status"] == "failed"
    assert job["error"] == {"type": "ValueError", "message": "boom", "reason": "non_retryable"}


async def test_wait_times_out_with_the_current_state(client: httpx.AsyncClient) -> None:
    job_id = await _enqueue(client)
    started = time.monotonic()
    response = await client.get(f"/jobs/{job_id}", params={"wait": 0.4})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert 0.35 < elapsed < 3


async def test_wait_on_a_finished_job_returns_at_once(client: httpx.AsyncClient) -> None:
    job_id = await _enqueue(client)
    assert (await client.delete(f"/jobs/{job_id}")).status_code == 200
    started = time.monotonic()
    assert (await client.get(f"/jobs/{job_id}", params={"wait": 30})).json()["status"] == "cancelled"
    assert time.monotonic() - started < 2


async def test_wait_without_a_live_subscription_answers_a_finished_job_at_once(
    client: httpx.AsyncClient,
) -> None:
    """A producer still subscribing (just started, or reconnecting) gives a waiting request a 1 s grace
    for the subscription; a job that has already ended needs none and answers at once."""
    finished, queued = await _enqueue(client), await _enqueue(client)
    assert (await client.delete(f"/jobs/{finished}")).status_code == 200
    ready = await _subscribed(client)
    ready.clear()  # as while the subscription is being (re)made
    try:
        started = time.monotonic()
        assert (await client.get(f"/jobs/{finished}", params={"wait": 30})).json()["status"] == "cancelled"
        assert time.monotonic() - started < 1.0  # the grace is 1 s: this one never entered it
        started = time.monotonic()
        assert (await client.get(f"/jobs/{queued}", params={"wait": 30})).json()["status"] == "queued"
        assert 0.9 < time.monotonic() - started < 10  # the grace, then the job as it is
    finally:
        ready.set()


async def test_cancel_a_queued_job(client: httpx.AsyncClient, taskq: Taskq) -> None:
    job_id = await _enqueue(client)
    response = await client.delete(f"/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["cancelled"] is True
    assert response.json()["job"]["status"] == "cancelled"
    assert (await taskq.stats("default")).pending == 0
    assert (await taskq.claim("default", "w")).jobs == []


async def test_cancel_a_scheduled_job(client: httpx.AsyncClient, taskq: Taskq) -> None:
    job_id = await _enqueue(client, delay_seconds=60)
    assert (await client.delete(f"/jobs/{job_id}")).json()["job"]["status"] == "cancelled"
    assert (await taskq.stats("default")).scheduled == 0


async def test_cancel_a_running_job_requests_it(client: httpx.AsyncClient, taskq: Taskq) -> None:
    job_id = await _enqueue(client)
    await taskq.claim("default", "worker-1")
    response = await client.delete(f"/jobs/{job_id}")
    assert response.status_code == 202
    body = response.json()
    assert body["cancelled"] is False
    assert (body["job"]["status"], body["job"]["cancel_requested"]) == ("running", True)


async def test_cancel_a_finished_job_is_409(client: httpx.AsyncClient, taskq: Taskq) -> None:
    job_id = await _enqueue(client)
    claimed = (await taskq.claim("default", "worker-1")).jobs[0]
    await taskq.complete("default", [Ack(job_id, claimed.token)], worker_id="worker-1")
    problem = assert_problem(await client.delete(f"/jobs/{job_id}"), 409)
    assert "succeeded" in problem["detail"]
