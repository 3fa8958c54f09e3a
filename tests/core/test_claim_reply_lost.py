"""A claim that ran in Redis but whose reply never reached the worker (a read timeout, a dropped
connection, a blocked pop's deadline): the worker's next claim gets those very jobs back, so each job
runs once, at attempt 1, and a ``max_attempts=1`` job is never dead-lettered as ``worker_lost`` for a
reply the network ate.

Redis's replies are held back by a relay (commands still run at once), the way a busy script on
another connection, a slow network or a stalled event loop holds them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis

from taskq import (
    Ack,
    CoreSettings,
    JobStatus,
    QueueConfig,
    RedisUnavailable,
    Taskq,
    TaskRegistry,
    Waiter,
    Wire,
    connect,
)
from taskq.localserver import LocalRedis
from worker.manager import Worker
from worker.state import new_identity
from worker.testing import TERMINAL, wait_status, worker_settings

# ------------------------------------------------------------------ a relay that holds replies back
# It stands for every way a client loses a reply after Redis ran the command. Commands always reach
# Redis at once; only what Redis sends back is held, so a claim *runs* and its reply *never arrives*.


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    held: list[bytes] = field(default_factory=list)


class HoldingRelay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.holding = False
        self.links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def start(self) -> HoldingRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    def hold(self) -> None:
        """From now on keep Redis's replies (on every connection) instead of passing them on."""
        self.holding = True

    @property
    def held_bytes(self) -> int:
        return sum(len(chunk) for link in self.links for chunk in link.held)

    def drop_held(self) -> None:
        """Reset every connection that has replies held (the client sees its connection dropped),
        and pass replies on again."""
        for link in [link for link in self.links if link.held]:
            self._close(link)
        self.holding = False

    def release(self) -> None:
        """Pass replies on again; replies held for connections still open are delivered late."""
        self.holding = False
        for link in self.links:
            for chunk in link.held:
                link.client.write(chunk)
            link.held.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        link = _Link(writer, up_writer)
        self.links.add(link)
        try:
            await asyncio.gather(self._to_redis(reader, link), self._to_client(up_reader, link))
        finally:
            self._close(link)

    async def _to_redis(self, reader: asyncio.StreamReader, link: _Link) -> None:
        while data := await reader.read(65536):
            link.server.write(data)
        self._close(link)  # the client hung up (a timeout): Redis sees the close, as it would

    async def _to_client(self, reader: asyncio.StreamReader, link: _Link) -> None:
        while data := await reader.read(65536):
            if self.holding or link.held:
                link.held.append(data)
            else:
                link.client.write(data)
        self._close(link)

    def _close(self, link: _Link) -> None:
        self.links.discard(link)
        link.held.clear()
        for writer in (link.client, link.server):
            if not writer.is_closing():
                transport = writer.transport
                with contextlib.suppress(Exception):
                    transport.abort()

    async def aclose(self) -> None:
        for link in list(self.links):
            self._close(link)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def relay(redis_server: LocalRedis) -> AsyncIterator[HoldingRelay]:
    r = await HoldingRelay(redis_server.port).start()
    yield r
    await r.aclose()


@pytest.fixture
async def through_relay(
    relay: HoldingRelay, config: QueueConfig
) -> AsyncIterator[Callable[[float], Awaitable[Taskq]]]:
    """A worker's Taskq whose connection runs through the relay, with this command timeout; warm (as
    a worker that has been running: connected, its scripts known to Redis) before replies are held."""
    opened: list[Redis] = []

    async def make(timeout: float) -> Taskq:
        redis = connect(CoreSettings(redis_url=relay.url, environment="test", redis_socket_timeout=timeout))
        opened.append(redis)
        taskq = Taskq(redis, config)
        await taskq.scripts.load_all(redis)
        return taskq

    yield make
    for redis in opened:
        await redis.aclose()


def running(taskq: Taskq, job_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        job = await taskq.get_job(job_id)
        return job is not None and job.status == JobStatus.RUNNING

    return check


async def assert_ran_once_and_succeeded(taskq: Taskq, queue: str, job_id: str) -> None:
    job = await taskq.get_job(job_id)
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1)
    assert (await taskq.stats(queue)).dead == 0


async def test_a_claim_whose_reply_timed_out_hands_its_jobs_to_the_next_claim(
    relay: HoldingRelay, through_relay: Callable[[float], Awaitable[Taskq]], taskq: Taskq, queue_name: str
) -> None:
    worker = await through_relay(0.3)
    enq = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=1)
    relay.hold()
    with pytest.raises(RedisUnavailable):
        await worker.claim(queue_name, "w", 1)
    assert await running(taskq, enq.id)(), "the claim ran in Redis: the job is leased to w"
    relay.drop_held()

    batch = await worker.claim(queue_name, "w", 1)

    assert [(j.id, j.attempts) for j in batch.jobs] == [(enq.id, 1)], "the stranded job came back"
    flags, _ = await worker.complete(queue_name, [Ack(enq.id, batch.jobs[0].token)], worker_id="w")
    assert flags == [True]
    await assert_ran_once_and_succeeded(taskq, queue_name, enq.id)


async def test_a_complete_whose_reply_timed_out_hands_its_next_batch_to_the_retry(
    relay: HoldingRelay, through_relay: Callable[[float], Awaitable[Taskq]], taskq: Taskq, queue_name: str
) -> None:
    worker = await through_relay(0.3)
    first = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=1)
    second = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=1)
    (held,) = (await worker.claim(queue_name, "w", 1)).jobs
    assert held.id == first.id
    relay.hold()
    with pytest.raises(RedisUnavailable):
        await worker.complete(queue_name, [Ack(held.id, held.token)], worker_id="w", claim_next=1)
    assert await running(taskq, second.id)(), "the fused claim ran in Redis"
    relay.drop_held()

    # The worker's flusher sends the same ack again, asking for the next job as before.
    _, batch = await worker.complete(queue_name, [Ack(held.id, held.token)], worker_id="w", claim_next=1)

    assert [(j.id, j.attempts) for j in batch.jobs] == [(second.id, 1)]
    flags, _ = await worker.complete(queue_name, [Ack(second.id, batch.jobs[0].token)], worker_id="w")
    assert flags == [True]
    await assert_ran_once_and_succeeded(taskq, queue_name, first.id)
    await assert_ran_once_and_succeeded(taskq, queue_name, second.id)


async def test_a_claim_behind_a_blocking_pop_past_the_waits_deadline_is_recovered(
    relay: HoldingRelay, through_relay: Callable[[float], Awaitable[Taskq]], taskq: Taskq, queue_name: str
) -> None:
    worker = await through_relay(0.3)
    # The wait fails only at its bound (timeout + waiter.GRACE, over 2 s), and a claim's record lives
    # one lease: a lease well past that bound, or the record could expire before the retry asks.
    worker = Taskq(
        worker.redis, QueueConfig.of(taskq_prefix=taskq.config.prefix, lease_seconds=10, queues="*")
    )
    waiter = Waiter(worker, Wire(relay.url))
    await waiter.wire.execute(("PING",))
    enq = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=1)
    # No wake-up marker: the pop waits its 50 ms out, then the claim behind it takes the job.
    await taskq.redis.delete(taskq.queue_keys(queue_name).marker)
    relay.hold()
    try:
        with pytest.raises(RedisUnavailable):
            await waiter.wait_and_claim(queue_name, "w", 1, timeout=0.05)
    finally:
        await waiter.aclose()
    assert await running(taskq, enq.id)()
    relay.drop_held()

    batch = await worker.claim(queue_name, "w", 1)

    assert [(j.id, j.attempts) for j in batch.jobs] == [(enq.id, 1)]
    await worker.complete(queue_name, [Ack(enq.id, batch.jobs[0].token)], worker_id="w")
    await assert_ran_once_and_succeeded(taskq, queue_name, enq.id)


async def test_a_claim_whose_connection_is_reset_mid_flight_is_recovered_by_the_clients_retry(
    relay: HoldingRelay, through_relay: Callable[[float], Awaitable[Taskq]], taskq: Taskq, queue_name: str
) -> None:
    # redis-py sends a command again on a fresh connection when its connection drops: that resend
    # is a second claim unless it can be recognised as the same one.
    worker = await through_relay(10)
    enq = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=1)
    relay.hold()
    claim = asyncio.create_task(worker.claim(queue_name, "w", 1))
    await until(running(taskq, enq.id))
    await until(lambda: asyncio.sleep(0, relay.held_bytes > 0))
    relay.drop_held()

    batch = await asyncio.wait_for(claim, 5)

    assert [(j.id, j.attempts) for j in batch.jobs] == [(enq.id, 1)]
    await worker.complete(queue_name, [Ack(enq.id, batch.jobs[0].token)], worker_id="w")
    await assert_ran_once_and_succeeded(taskq, queue_name, enq.id)


async def test_a_stopping_worker_hands_back_the_jobs_of_a_claim_whose_reply_was_lost(
    relay: HoldingRelay, through_relay: Callable[[float], Awaitable[Taskq]], taskq: Taskq, queue_name: str
) -> None:
    worker = await through_relay(0.3)
    enq = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=1)
    relay.hold()
    with pytest.raises(RedisUnavailable):
        await worker.claim(queue_name, "w", 1)
    relay.drop_held()

    # Stopping: no more claims, but the lost one's jobs are fetched to go back with the rest.
    recovered = await worker.recover_claims("w")
    assert [j.id for j in recovered] == [enq.id]
    assert await worker.release(queue_name, [(j.id, j.token) for j in recovered]) == 1

    job = await taskq.get_job(enq.id)
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 0), "back in the queue, no attempt used"


async def test_a_worker_whose_claim_reply_was_lost_runs_the_job_once_at_attempt_one(
    relay: HoldingRelay, taskq: Taskq, prefix: str, queue_name: str, tmp_path: Path
) -> None:
    """End to end: a real worker (its claims, pops, heartbeats all through the relay) idles on the
    queue; the job is claimed in Redis while every reply is held, then the worker's connections drop."""
    settings = worker_settings(
        relay.url, prefix, tmp_path, worker_queues=queue_name, redis_socket_timeout=0.5,
        worker_idle_wait_seconds=0.2,
    )  # fmt: skip
    redis = connect(settings)
    worker_taskq = Taskq.from_settings(redis, settings)
    waiter = Waiter.from_settings(worker_taskq, settings)
    worker = Worker(
        settings, taskq=worker_taskq, waiter=waiter, registry=TaskRegistry.load(debug=True),
        identity=new_identity(),
    )  # fmt: skip
    run = asyncio.create_task(worker.run(install_signals=False))
    try:
        await until(lambda: asyncio.sleep(0, waiter.wire.client_id is not None))  # idle, blocked on the queue
        relay.hold()
        enq = await taskq.enqueue("debug.noop", {"tag": "once"}, queue=queue_name, max_attempts=1)
        await until(running(taskq, enq.id))  # a claim of the worker's took it; the reply is held
        relay.drop_held()

        job = await wait_status(taskq, enq.id, TERMINAL, timeout=15)

        assert (job.status, job.attempts, job.result) == (JobStatus.SUCCEEDED, 1, "once")
        assert (await taskq.stats(queue_name)).dead == 0
    finally:
        worker.request_stop()
        assert await asyncio.wait_for(run, 20) == 0
        await redis.aclose()
        await waiter.aclose()
