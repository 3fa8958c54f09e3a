"""A claim of several jobs writes their 'running' events as one stream entry; over SSE each job still
gets its own frame, and a client that resumes with a Last-Event-ID pointing inside that entry
('<entry id>:<index>') gets exactly the events after it: through the real producer (the stack of
test_sse_job_events)."""

from __future__ import annotations

import asyncio
import json
import uuid

# The stack fixture and SSE helpers of the SSE tests (a sibling module: pytest puts its folder on
# sys.path; mypy, which checks the tests as files, does not see it).
from test_sse_job_events import READ_TIMEOUT, Stack, frames, read_all, stack  # type: ignore[import-not-found]

from producer.testing import assert_problem
from taskq import Ack, EnqueueRequest, QueueConfig, Taskq
from taskq.job_events import read_after
from taskq.redis_client import connect_url

__all__ = ["stack"]  # the module's fixture, used here too


async def test_a_resume_inside_a_batch_entry_is_exact_for_a_job_and_for_a_queue(stack: Stack) -> None:
    queue = f"idle{uuid.uuid4().hex[:8]}"  # no worker serves it: this test claims and acks
    redis = connect_url(stack.redis_url)
    taskq = Taskq(redis, QueueConfig.of(taskq_prefix=stack.prefix, queues="*"))
    try:
        await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue)] * 4)
        claimed = (await taskq.claim(queue, "w1", 4)).jobs
        await taskq.complete(queue, [Ack(j.id, j.token, "null") for j in claimed], worker_id="w1")
        everything = await read_after(redis, taskq.queue_keys(queue), "0-0")
        running = [e for e in everything if e.type == "running"]
        assert [e.job_id for e in running] == [j.id for j in claimed]
        assert len({e.id.partition(":")[0] for e in running}) == 1  # one entry...
        assert len({e.id for e in running}) == 4  # ...four events, four ids

        async with stack.client() as client:
            # One job: its frames carry the sub-entry ids; resuming at its 'running' gives the rest.
            job = claimed[2].id
            whole = await read_all(client, f"/jobs/{job}/events")
            assert [(f["event"], f["id"]) for f in whole if "data" in f] == [
                (e.type, e.id) for e in everything if e.job_id == job
            ]
            resumed = await read_all(client, f"/jobs/{job}/events", **{"Last-Event-ID": running[2].id})
            assert [json.loads(f["data"])["type"] for f in resumed if "data" in f] == ["succeeded"]

            # The queue: a cursor inside the entry resumes with the next event of the same entry.
            cut = everything.index(running[1])
            expected = everything[cut + 1 :]
            headers, params = {"Last-Event-ID": f"{queue}={running[1].id}"}, {"queue": queue}
            got: list[dict[str, str]] = []
            async with asyncio.timeout(READ_TIMEOUT):
                async with client.stream("GET", "/events", params=params, headers=headers) as response:
                    assert response.status_code == 200
                    async for frame in frames(response):
                        if "data" in frame:
                            got.append(frame)
                        if len(got) == len(expected):
                            break
        assert [json.loads(f["data"])["id"] for f in got] == [e.id for e in expected]
        assert [f["id"] for f in got] == [f"{queue}={e.id}" for e in expected]
    finally:
        await redis.aclose()


async def test_a_malformed_position_inside_an_entry_is_a_422(stack: Stack) -> None:
    async with stack.client() as client:
        job = (await client.post("/jobs", json={"task": "debug.noop", "args": {}})).json()["id"]
        for bad in ("1-2:", "1-2:x", "1-2:3:4", "1-2:-1"):
            assert_problem(await client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": bad}), 422)
            assert_problem(await client.get("/events", headers={"Last-Event-ID": f"default={bad}"}), 422)
