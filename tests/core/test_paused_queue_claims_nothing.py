"""A paused queue: every claim path (plain claim, the claim fused with acks, the claim behind the
waiter's blocking pop) hands out nothing new, while enqueues go on; a paused waiter blocks instead of
spinning, and resuming wakes it at once. The pause is a key in the queue's slot, without a TTL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from taskq import Taskq, Waiter, Wire
from taskq.controls import set_paused, states
from taskq.models import Ack


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def waiter(redis_url: str, taskq: Taskq) -> AsyncIterator[Waiter]:
    w = Waiter(taskq, Wire(redis_url))
    yield w
    await w.aclose()


async def _pending(taskq: Taskq, queue: str) -> int:
    return (await taskq.stats(queue)).pending


async def test_a_plain_claim_takes_nothing_from_a_paused_queue(taskq: Taskq, queue_name: str) -> None:
    assert await set_paused(taskq, queue_name, True)
    assert not await set_paused(taskq, queue_name, True)  # idempotent: already paused
    for _ in range(3):
        await taskq.enqueue("debug.noop", queue=queue_name)  # a paused queue still accepts jobs
    assert (await taskq.claim(queue_name, "w", 10)).jobs == []
    assert await _pending(taskq, queue_name) == 3
    [state] = await states(taskq, [queue_name])
    assert state.paused
    assert state.stats.pending == 3

    assert await set_paused(taskq, queue_name, False)
    assert len((await taskq.claim(queue_name, "w", 10)).jobs) == 3


async def test_the_claim_fused_with_acks_acks_but_takes_nothing(taskq: Taskq, queue_name: str) -> None:
    first = await taskq.enqueue("debug.noop", queue=queue_name)
    [job] = (await taskq.claim(queue_name, "w", 1)).jobs
    await taskq.enqueue("debug.noop", queue=queue_name)
    await set_paused(taskq, queue_name, True)
    # The job already running finishes normally; the fused claim takes nothing new.
    ok, batch = await taskq.complete(queue_name, [Ack(job.id, job.token, "{}")], worker_id="w", claim_next=5)
    assert ok == [True]
    assert batch.jobs == []
    assert (await taskq.get_job(first.id, queue_name)).status.value == "succeeded"  # type: ignore[union-attr]
    assert await _pending(taskq, queue_name) == 1


async def test_the_claim_behind_a_blocking_pop_takes_nothing_and_rearms_no_marker(
    waiter: Waiter, taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    await set_paused(taskq, queue_name, True)
    for _ in range(3):
        await taskq.enqueue("debug.noop", queue=queue_name)
    marker = taskq.queue_keys(queue_name).marker
    assert await redis.exists(marker)  # the enqueue woke a worker...
    batch = await waiter.wait_and_claim(queue_name, "w", 5, timeout=5)
    assert batch.jobs == []  # ...whose claim took nothing
    # And left no marker behind: the next wait blocks instead of waking at once (no busy loop).
    assert not await redis.exists(marker)
    started = time.monotonic()
    assert (await waiter.wait_and_claim(queue_name, "w", 5, timeout=0.3)).jobs == []
    assert time.monotonic() - started >= 0.25
    assert await _pending(taskq, queue_name) == 3


async def test_resume_wakes_a_blocked_waiter_promptly(
    waiter: Waiter, taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    await set_paused(taskq, queue_name, True)
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    assert (await waiter.wait_and_claim(queue_name, "w", 5, timeout=5)).jobs == []  # consumes the marker
    wait = asyncio.create_task(waiter.wait_and_claim(queue_name, "w", 5, timeout=30))

    async def blocked() -> bool:
        client_id = waiter.wire.client_id
        clients = await redis.client_list(client_id=[client_id]) if client_id is not None else []
        return bool(clients) and "b" in clients[0]["flags"]

    await until(blocked)
    resumed = time.monotonic()
    await set_paused(taskq, queue_name, False)
    batch = await asyncio.wait_for(wait, timeout=10)
    assert [j.id for j in batch.jobs] == [enq.id]
    # Far sooner than the wait's own 30 s, with room for a loaded host.
    assert time.monotonic() - resumed < 10


async def test_the_pause_is_a_key_of_the_queue_without_ttl(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    await set_paused(taskq, queue_name, True)
    key = taskq.queue_keys(queue_name).paused
    assert "{" + queue_name + "}" in key  # the queue's hash slot: the claim scripts may read it
    assert await redis.pttl(key) == -1  # no expiry: a pause lasts until resumed
    await set_paused(taskq, queue_name, False)
    assert not await redis.exists(key)
    assert not await set_paused(taskq, queue_name, False)  # idempotent: already running
