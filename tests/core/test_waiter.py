"""An idle worker's wait (Waiter over its own Wire connection): it blocks in Redis, wakes with its job
on an enqueue, survives restarts and an empty script cache, and can be ended from outside."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from taskq import QueueConfig, RedisUnavailable, Taskq, Waiter, Wire
from taskq.localserver import LocalRedis
from taskq.redis_client import connect_url


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def blocked(redis: Redis, wire: Wire) -> Callable[[], Awaitable[bool]]:
    """True once ``wire``'s connection is blocked in Redis (the wait is really waiting)."""

    async def check() -> bool:
        if wire.client_id is None:
            return False
        clients = await redis.client_list(client_id=[wire.client_id])
        return bool(clients) and "b" in clients[0]["flags"]

    return check


@pytest.fixture
async def waiter(redis_url: str, taskq: Taskq) -> AsyncIterator[Waiter]:
    w = Waiter(taskq, Wire(redis_url))
    yield w
    await w.aclose()


async def test_a_blocked_wait_wakes_with_the_job_it_was_woken_for(
    waiter: Waiter, taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    wait = asyncio.create_task(waiter.wait_and_claim(queue_name, "w", 5, timeout=30))
    await until(blocked(redis, waiter.wire))
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    batch = await asyncio.wait_for(wait, timeout=5)
    assert [j.id for j in batch.jobs] == [enq.id]
    assert batch.jobs[0].token > 0
    assert (await taskq.stats(queue_name)).running == 1  # claimed under a lease, not just popped


async def test_a_wait_that_times_out_claims_nothing(waiter: Waiter, queue_name: str) -> None:
    batch = await waiter.wait_and_claim(queue_name, "w", 5, timeout=0.05)
    assert batch.jobs == []
    assert batch.next_due_ms is None
    assert await waiter.wait_for_work([queue_name], timeout=0.05) is None


async def test_a_wait_reports_when_the_next_delayed_job_is_due(
    waiter: Waiter, taskq: Taskq, queue_name: str
) -> None:
    await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=60_000)
    batch = await waiter.wait_and_claim(queue_name, "w", 5, timeout=1)  # the delayed enqueue woke it
    assert batch.jobs == []
    assert batch.next_due_ms is not None
    assert 55_000 < batch.next_due_ms <= 60_000


async def test_a_claim_that_took_fewer_than_asked_says_the_queue_is_drained(
    waiter: Waiter, taskq: Taskq, queue_name: str
) -> None:
    # The worker skips its claim before the next wait on this word: it must be true only when no
    # ready job can be left behind without the marker set.
    jobs = [await taskq.enqueue("debug.noop", queue=queue_name) for _ in range(3)]
    full = await waiter.wait_and_claim(queue_name, "w", 2, timeout=1)
    assert len(full.jobs) == 2  # as many as asked: more may be waiting
    assert not full.drained
    rest = await waiter.wait_and_claim(queue_name, "w", 2, timeout=1)
    assert [j.id for j in rest.jobs] == [jobs[2].id]
    assert rest.drained
    late = await taskq.enqueue("debug.noop", queue=queue_name)
    woken = await waiter.wait_and_claim(queue_name, "w", 2, timeout=5)  # the marker wakes it at once
    assert [j.id for j in woken.jobs] == [late.id]


async def test_a_replayed_claim_never_says_the_queue_is_drained(
    waiter: Waiter, taskq: Taskq, queue_name: str
) -> None:
    first = await taskq.enqueue("debug.noop", queue=queue_name)
    nonce = "12345678901234567890"
    taken = await taskq.executor.run(taskq.commands[queue_name].claim("w", 1, nonce))
    assert [j.id for j in taken.jobs] == [first.id]
    taskq.nonces.doubt(queue_name, nonce)  # as if that claim's reply had been lost
    waiting = [await taskq.enqueue("debug.noop", queue=queue_name) for _ in range(2)]
    replayed = await waiter.wait_and_claim(queue_name, "w", 5, timeout=1)
    # The replay hands back what the lost call took and claims nothing new: two jobs still wait.
    assert [j.id for j in replayed.jobs] == [first.id]
    assert not replayed.drained
    assert (await taskq.stats(queue_name)).pending == len(waiting)


async def test_wait_for_work_names_the_queue_that_got_work(
    waiter: Waiter, taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    other = queue_name + "-b"
    wait = asyncio.create_task(waiter.wait_for_work([queue_name, other], timeout=30))
    await until(blocked(redis, waiter.wire))
    await taskq.enqueue("debug.noop", queue=other)
    assert await asyncio.wait_for(wait, timeout=5) == other


async def test_the_claim_survives_an_empty_script_cache(
    waiter: Waiter, taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    await redis.script_flush()  # what a Redis restart does to the script cache
    batch = await waiter.wait_and_claim(queue_name, "w", 5, timeout=1)
    assert [j.id for j in batch.jobs] == [enq.id]


async def test_interrupt_ends_a_blocked_wait_at_once_and_loses_no_job(
    waiter: Waiter, taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    assert await waiter.interrupt() is False  # nothing blocked (not even connected) yet
    wait = asyncio.create_task(waiter.wait_and_claim(queue_name, "w", 5, timeout=30))
    await until(blocked(redis, waiter.wire))
    assert await waiter.interrupt() is True
    batch = await asyncio.wait_for(wait, timeout=5)  # not the 30 s of its timeout
    assert batch.jobs == []
    # The wire is still in step: the next wait claims its job.
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    assert [j.id for j in (await waiter.wait_and_claim(queue_name, "w", 5, timeout=1)).jobs] == [enq.id]


async def test_an_abandoned_call_drops_the_connection_so_replies_stay_in_step(redis_url: str) -> None:
    wire = Wire(redis_url)
    key = f"wire-{os.getpid()}-{time.monotonic_ns()}"
    with pytest.raises(TimeoutError):
        await wire.execute(("BLPOP", key, "1"), timeout=0.05)
    pusher = connect_url(redis_url)
    await pusher.rpush(key, "late")  # had the connection been kept, this would answer the next call
    assert await wire.execute(("PING",)) == [b"PONG"]
    assert await pusher.llen(key) == 1  # the abandoned BLPOP's connection is gone: it popped nothing
    await pusher.delete(key)
    await pusher.aclose()
    await wire.aclose()


async def test_error_replies_come_back_as_exceptions_in_order(redis_url: str) -> None:
    wire = Wire(redis_url)
    ok, bad, pong = await wire.execute(("PING",), ("NOSUCHCOMMAND",), ("PING",))
    assert ok == pong == b"PONG"
    assert isinstance(bad, Exception)
    assert "unknown command" in str(bad).lower()
    await wire.aclose()


async def test_concurrent_calls_on_one_wire_get_their_own_replies(redis_url: str) -> None:
    wire = Wire(redis_url)
    replies = await asyncio.gather(*(wire.execute(("ECHO", str(i))) for i in range(200)))
    assert replies == [[str(i).encode()] for i in range(200)]
    await wire.aclose()


async def test_password_and_database_are_taken_from_the_url(config: QueueConfig, queue_name: str) -> None:
    with LocalRedis(password="s3cret").running() as server:
        db_url = server.url.rsplit("/", 1)[0] + "/3"
        wire = Wire(db_url)
        assert await wire.execute(("SET", "k", "v")) == [b"OK"]
        info = (await wire.execute(("CLIENT", "INFO")))[0].decode()
        assert " db=3 " in info
        assert " name=taskq " in info
        direct = connect_url(db_url)
        assert await direct.get("k") == b"v"  # written to db 3, with the password
        await direct.aclose()
        await wire.aclose()
        wrong = Waiter(Taskq(connect_url(server.url), config), Wire(server.url.replace("s3cret", "nope")))
        with pytest.raises(RedisUnavailable, match="credentials"):
            await wrong.wait_for_work([queue_name], timeout=0.05)


async def test_a_restart_fails_the_wait_and_the_next_wait_reconnects(
    config: QueueConfig, queue_name: str
) -> None:
    with LocalRedis().running() as server:
        redis = connect_url(server.url)
        taskq = Taskq(redis, config)
        waiter = Waiter(taskq, Wire(server.url))
        wait = asyncio.create_task(waiter.wait_and_claim(queue_name, "w", 5, timeout=30))
        await until(blocked(redis, waiter.wire))
        server.restart(kill=True)
        with pytest.raises(RedisUnavailable):
            await asyncio.wait_for(wait, timeout=5)
        enq = await taskq.enqueue("debug.noop", queue=queue_name)  # AOF: the server is back and empty
        batch = await waiter.wait_and_claim(queue_name, "w", 5, timeout=1)  # and its script cache too
        assert [j.id for j in batch.jobs] == [enq.id]
        await waiter.aclose()
        await redis.aclose()


async def test_a_frozen_redis_fails_the_wait_within_its_bound(config: QueueConfig, queue_name: str) -> None:
    with LocalRedis().running() as server:
        waiter = Waiter(Taskq(connect_url(server.url), config), Wire(server.url))
        await waiter.wait_for_work([queue_name], timeout=0.01)  # connected
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisUnavailable):
                await waiter.wait_and_claim(queue_name, "w", 5, timeout=0.1)
            assert time.monotonic() - started < 10  # bounded (timeout + grace), never a hang
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        await waiter.aclose()


async def test_an_interrupted_wait_still_returns_what_its_claim_took(
    waiter: Waiter, taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    """Why a stopping worker interrupts its wait instead of cancelling it: the claim behind the pop
    runs either way, and only a wait that returns hands its jobs over (to be handed back)."""
    enq = await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=300)
    woke = await waiter.wait_and_claim(queue_name, "w", 5, timeout=5)  # the delayed enqueue's news
    assert woke.jobs == []
    assert woke.next_due_ms is not None
    wait = asyncio.create_task(waiter.wait_and_claim(queue_name, "w", 5, timeout=30))
    await until(blocked(redis, waiter.wire))
    job = taskq.queue_keys(queue_name).job(enq.id)
    due = int(await redis.hget(job, "scheduled_at") or 0)

    async def is_due() -> bool:
        seconds, micros = await redis.time()
        return seconds * 1000 + micros // 1000 >= due

    await until(is_due)
    assert await waiter.interrupt() is True
    batch = await asyncio.wait_for(wait, timeout=5)
    assert [j.id for j in batch.jobs] == [enq.id]  # promoted and claimed by the interrupted wait
    assert (await taskq.stats(queue_name)).running == 1


def test_the_wire_runs_on_uvloop_as_the_services_do(redis_url: str) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[object]:
        wire = Wire(redis_url)
        try:
            return await wire.execute(("PING",), ("ECHO", "uv"))
        finally:
            await wire.aclose()

    assert uvloop.run(main()) == [b"PONG", b"uv"]
