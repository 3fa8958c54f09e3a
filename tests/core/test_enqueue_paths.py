"""Plain jobs go to Redis as a MULTI/EXEC, the rest through the enqueue script, over redis-py or over a
Wire, from the asyncio or the blocking client. Whichever way a job went, it must be the same job."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from taskq import (
    CoreSettings,
    EnqueueRequest,
    PayloadTooLarge,
    QueueConfig,
    SyncTaskq,
    SyncWire,
    Taskq,
    Wire,
    connect_sync,
)
from taskq.commands.enqueue import PLAIN_MAX_JOBS, pending_score
from taskq.constants import BAND
from taskq.queue import STREAM_CHUNK

PATHS = [
    "script",
    "transaction",
    "transaction-over-wire",
    "script-over-wire",
    "sync-transaction",
    "sync-transaction-over-wire",
]


@pytest.fixture(params=PATHS)
async def enqueue_via(
    request: pytest.FixtureRequest, redis: Redis, redis_url: str, config: QueueConfig
) -> AsyncIterator[tuple[str, Taskq, SyncTaskq | None]]:
    over_wire = request.param.endswith("over-wire")
    wire = Wire(redis_url) if over_wire else None
    sync = None
    if request.param.startswith("sync"):
        client = connect_sync(CoreSettings(redis_url=redis_url, environment="test"))
        sync = SyncTaskq(client, config, wire=SyncWire(redis_url) if over_wire else None)
    yield request.param, Taskq(redis, config, wire=wire), sync
    if wire is not None:
        await wire.aclose()
    if sync is not None:
        sync.close()


async def _enqueue(via: tuple[str, Taskq, SyncTaskq | None], requests: list[EnqueueRequest]) -> list[str]:
    path, taskq, sync = via
    if path.startswith("script"):
        # An idempotency key needs the script's logic: these jobs go through it.
        requests = [replace(r, idempotency_key=uuid.uuid4().hex) for r in requests]
        assert taskq.prepare_enqueue(requests).plain is None
    else:
        assert taskq.prepare_enqueue(requests).plain is not None
    out = sync.enqueue_many(requests) if sync is not None else await taskq.enqueue_many(requests)
    assert all(e.created for e in out)
    return [e.id for e in out]


async def test_every_path_writes_the_same_job(
    enqueue_via: tuple[str, Taskq, SyncTaskq | None], taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    before_ms = int((await redis.time())[0]) * 1000
    reqs = [EnqueueRequest("debug.noop", {"n": n}, queue=queue_name, priority=n) for n in (2, 7)]
    ids = await _enqueue(enqueue_via, reqs)
    qk = taskq.queue_keys(queue_name)
    for job_id, req in zip(ids, reqs, strict=True):
        stored = await redis.hgetall(qk.job(job_id))
        assert set(stored) == {b"payload", b"status", b"priority"}  # nothing more, nothing less
        assert stored[b"status"] == b"queued"
        assert int(stored[b"priority"]) == req.priority
        job = await taskq.get_job(job_id)
        assert job is not None
        assert job.args == req.args
        assert job.status.value == "queued"
        score = await redis.zscore(qk.pending, job_id)
        assert score is not None
        # The priority band, then the job's created_at: one clock for the script and the MULTI.
        assert int(score) // BAND == 9 - req.priority
        assert int(score) % BAND == json.loads(stored[b"payload"])["created_at"]
        assert abs(int(score) % BAND - before_ms) < 60_000
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.counters["enqueued"]) == (2, 2)
    assert await redis.zcard(qk.marker) == 1  # an idle worker would wake
    assert queue_name in await taskq.queues()


async def test_claims_follow_priority_then_arrival_whatever_the_path(
    enqueue_via: tuple[str, Taskq, SyncTaskq | None], taskq: Taskq, queue_name: str
) -> None:
    first = await _enqueue(enqueue_via, [EnqueueRequest("debug.noop", {}, queue=queue_name)])
    urgent = await taskq.enqueue("debug.noop", queue=queue_name, priority=9)  # the other path
    later = await _enqueue(enqueue_via, [EnqueueRequest("debug.noop", {}, queue=queue_name)])
    claimed = [j.id for j in (await taskq.claim(queue_name, "w", 5)).jobs]
    assert claimed == [urgent.id, *first, *later]


def test_big_batches_go_through_the_script() -> None:
    taskq = Taskq(Redis(), QueueConfig.of(queues="*"))
    reqs = [EnqueueRequest("debug.noop", {})]
    assert taskq.prepare_enqueue(reqs * PLAIN_MAX_JOBS).plain is not None
    assert taskq.prepare_enqueue(reqs * (PLAIN_MAX_JOBS + 1)).plain is None
    assert taskq.prepare_enqueue([replace(reqs[0], delay_ms=10)]).plain is None
    assert Taskq(Redis(), QueueConfig.of(queue_max_depth=10, queues="*")).prepare_enqueue(reqs).plain is None


def test_the_python_pending_score_is_the_scripts() -> None:
    from taskq.scripts import script_source

    assert f"local BAND = {BAND}" in script_source("enqueue")
    assert pending_score(9, 5) == 5
    assert pending_score(0, 5) == 9 * BAND + 5


async def test_a_script_over_the_wire_survives_an_empty_script_cache(
    redis: Redis, redis_url: str, config: QueueConfig, queue_name: str
) -> None:
    wire = Wire(redis_url)
    taskq = Taskq(redis, config, wire=wire)
    await redis.script_flush()  # what a Redis restart does
    first = await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k")
    again = await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k")
    assert first.created
    assert (again.id, again.created) == (first.id, False)
    await wire.aclose()


async def test_a_big_plain_batch_is_streamed_and_lands_whole_and_in_order(
    redis: Redis, redis_url: str, config: QueueConfig, queue_name: str
) -> None:
    wire = Wire(redis_url)
    taskq = Taskq(redis, config, wire=wire)
    n = STREAM_CHUNK * 2 + 17  # three parts
    out = await taskq.enqueue_many(
        [EnqueueRequest("debug.noop", {"n": i}, queue=queue_name) for i in range(n)]
    )
    assert len(out) == n
    assert all(e.created for e in out)
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.counters["enqueued"]) == (n, n)
    claimed = (await taskq.claim(queue_name, "w", n)).jobs
    assert [j.payload().args["n"] for j in claimed] == list(range(n))
    assert [j.id for j in claimed] == [e.id for e in out]
    await wire.aclose()


async def test_a_streamed_batch_that_fails_half_way_writes_nothing_and_keeps_the_wire(
    redis: Redis, redis_url: str, config: QueueConfig, queue_name: str
) -> None:
    wire = Wire(redis_url)
    taskq = Taskq(
        redis, QueueConfig.of(taskq_prefix=config.prefix, max_payload_bytes=2_000, queues="*"), wire=wire
    )
    reqs = [EnqueueRequest("debug.noop", {"n": i}, queue=queue_name) for i in range(STREAM_CHUNK * 3)]
    reqs[STREAM_CHUNK * 2] = EnqueueRequest("debug.noop", {"blob": "x" * 5_000}, queue=queue_name)
    await wire.execute(("PING",))  # connected
    before = wire.client_id
    # Another call on the same connection, in flight while the batch fails: it must get its reply.
    other = asyncio.create_task(wire.execute(("PING",)))
    with pytest.raises(PayloadTooLarge):
        await taskq.enqueue_many(reqs)
    assert await other == [b"PONG"]
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.counters.get("enqueued", 0)) == (0, 0)  # DISCARD: nothing written
    keys = [k async for k in redis.scan_iter(match=taskq.queue_keys(queue_name).job_prefix + "*")]
    assert keys == []
    assert wire.client_id == before  # same connection, still in step
    ok = await taskq.enqueue_many(reqs[: STREAM_CHUNK + 1])
    assert (await taskq.stats(queue_name)).pending == len(ok)
    await wire.aclose()
