"""A write the worker owes Redis (a failure, a hand-back, an ack, a cron tick) is retried through an outage
for as long as it still matters (``Outage.retry_while_leased``), and given up once it no longer does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from taskq import JobStatus, Taskq, connect
from taskq.localserver import LocalRedis
from worker.connection import LAPSED, Outage, RedisState
from worker.slots import StopReason
from worker.testing import RunningWorker, wait_for, wait_status, worker_settings


@pytest.fixture
def server() -> Iterator[LocalRedis]:
    """A server of this test's own, so it can be stopped without disturbing the others."""
    with LocalRedis().running() as local:
        yield local


@pytest.fixture
async def client(server: LocalRedis, prefix: str, tmp_path: Path) -> AsyncIterator[Redis]:
    redis = connect(worker_settings(server.url, prefix, tmp_path))
    yield redis
    await redis.aclose()


async def _reconnect() -> None:
    pass  # a redis-py client reconnects on its next call


async def test_a_write_is_retried_until_redis_returns(server: LocalRedis, client: Redis) -> None:
    await asyncio.to_thread(server.stop)
    state = RedisState()
    restarting: list[asyncio.Task[object]] = []

    def leased() -> bool:
        if not restarting:  # the first failure seen: bring Redis back
            restarting.append(asyncio.create_task(asyncio.to_thread(server.start)))
        return True

    result = await Outage(state, _reconnect).retry_while_leased("test", client.ping, leased)
    assert result is True
    assert state.up  # the outage was noted, and its end too


async def test_a_write_is_given_up_once_it_no_longer_matters(server: LocalRedis, client: Redis) -> None:
    await asyncio.to_thread(server.stop)
    asked: list[bool] = []

    def leased() -> bool:
        asked.append(len(asked) < 2)
        return asked[-1]

    state = RedisState()
    result = await Outage(state, _reconnect).retry_while_leased("test", client.ping, leased)
    assert result is LAPSED
    assert asked == [True, True, False]  # asked after each failure, and given up at the first "no"
    assert not state.up


async def test_a_hard_stop_ends_the_retry_at_once(server: LocalRedis, client: Redis) -> None:
    await asyncio.to_thread(server.stop)
    hard_stop = asyncio.Event()
    hard_stop.set()
    result = await Outage(RedisState(), _reconnect, hard_stop).retry_while_leased(
        "test", client.ping, lambda: True
    )
    assert result is LAPSED


async def test_a_timeout_recorded_during_an_outage_reaches_redis_when_it_returns(
    server: LocalRedis,
    prefix: str,
    tmp_path: Path,
    start_worker: Callable[..., Awaitable[RunningWorker]],
    client_for: Callable[..., Taskq],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = worker_settings(server.url, prefix, tmp_path, lease_seconds=30.0, heartbeat_seconds=0.3)
    taskq = client_for(settings)
    # The timeout must come after Redis is down (a stop takes ~0.1 s, more on a loaded box): a failure
    # recorded before the outage would leave nothing owed to wait for.
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 30}, timeout=3.0, max_attempts=1)).id
    handle = await start_worker(settings)
    await wait_status(taskq, job_id, {JobStatus.RUNNING}, timeout=10)
    caplog.set_level(logging.WARNING, "taskq.worker")
    await asyncio.to_thread(server.stop)

    async def failure_owed() -> bool:
        # Timed out (its runner caught the stop) and still at work: recording the failure, with Redis down.
        h = handle.worker.slots.held.get(job_id)
        timed_out = h is not None and h.stop_reason is StopReason.TIMEOUT and h.stop_seen and h.running
        return timed_out and not handle.worker.state.up

    await wait_for(failure_owed, 15, "the timeout's failure to meet the outage")
    await asyncio.to_thread(server.start)
    job = await wait_status(taskq, job_id, {JobStatus.FAILED, JobStatus.SUCCEEDED}, timeout=20)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.type == "JobTimeout"
    assert "failure not recorded" not in caplog.text
