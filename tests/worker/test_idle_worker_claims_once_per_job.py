"""An idle worker pays one claim per job: the claim pipelined behind its blocking pop, nothing more.

A wake-up's claim that took fewer jobs than it asked for emptied the queue, and any job enqueued
after it sets the marker, so the worker blocks again straight away instead of sending a claim that
can only come back empty (a Lua script, Redis's costliest call on this path, once per job)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from taskq import Taskq
from taskq.scripts import script
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, RunningWorker, wait_for, wait_status

JOBS = 5


@pytest.fixture
async def slowlog(redis: Redis) -> AsyncIterator[Redis]:
    """Every command logged (the session's server is this test's alone while it runs), then the
    server's settings put back."""
    before = {str(k): str(v) for k, v in (await redis.config_get("slowlog-*")).items()}
    await redis.config_set("slowlog-log-slower-than", 0)
    await redis.config_set("slowlog-max-len", 100_000)
    try:
        yield redis
    finally:
        for name, value in before.items():
            await redis.config_set(name, value)
        await redis.slowlog_reset()


async def test_an_idle_worker_claims_once_per_job(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Callable[..., Awaitable[RunningWorker]],
    slowlog: Redis,
    prefix: str,
) -> None:
    settings = make_settings(worker_idle_wait_seconds=30)  # no wait may time out in the test
    running = await start_worker(settings)
    taskq = client_for(settings)
    waiter = running.worker.waiter

    async def blocked() -> bool:
        if waiter.wire.client_id is None:
            return False
        clients = await slowlog.client_list(client_id=[waiter.wire.client_id])
        return bool(clients) and "b" in clients[0]["flags"]

    claim_sha = script("claim").sha.encode()

    async def claims() -> int:
        entries = await slowlog.slowlog_get(100_000)
        return sum(
            1
            for entry in entries
            if entry["command"].startswith(b"EVALSHA " + claim_sha) and prefix.encode() in entry["command"]
        )

    await wait_for(blocked, what="the worker blocked waiting for work")
    await slowlog.slowlog_reset()
    for _ in range(JOBS):
        job = await taskq.enqueue("debug.noop", {})
        await wait_status(taskq, job.id, TERMINAL)
        # The cycle is over only once the worker waits again: any claim it sends has been sent.
        await wait_for(blocked, what="the worker blocked again after its job")

    # One claim per wake-up (the one behind the pop that brought each job); before, each wake-up was
    # followed by a claim that came back empty, twice the scripts for the same work.
    assert await claims() == JOBS
