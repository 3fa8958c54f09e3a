"""A declared queue that no live worker serves accepts jobs nobody runs: GET /queues and /metrics
say how many live workers serve each queue, so that state is one alert away, not a silent pile-up."""

from __future__ import annotations

import time
from typing import Any

from taskq import Taskq
from taskq.workers import WorkerBeat, beat


async def test_queues_and_metrics_count_the_workers_serving_each_queue(
    make_client: Any, taskq: Taskq
) -> None:
    now = int(time.time() * 1000)
    await beat(taskq, WorkerBeat("w1", "host", 1, now, 4, ("default",), ()), ttl_ms=60_000)
    async with make_client(queues="emails") as client:
        await client.post("/jobs", json={"task": "debug.noop", "queue": "emails"})
        views = {v["queue"]: v for v in (await client.get("/queues")).json()}
        one = (await client.get("/queues/emails")).json()
        text = (await client.get("/metrics")).text
    assert (views["default"]["workers"], views["emails"]["workers"]) == (1, 0)
    assert (one["pending"], one["workers"]) == (1, 0)
    assert 'taskq_queue_workers{queue="default"} 1.0' in text
    assert 'taskq_queue_workers{queue="emails"} 0.0' in text
