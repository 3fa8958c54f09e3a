"""Every state change of a job leaves an event in its queue's stream, written by the script (or the
transaction) that makes the change: read back with XRANGE after each command, on a real server."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from taskq import Ack, EnqueueRequest, JobError, QueueConfig, Taskq
from taskq.job_events import JobEvent, read_after, window


class Events:
    """The queue's stream, read a step at a time: ``new()`` is what the last command added."""

    def __init__(self, redis: Redis, taskq: Taskq, queue: str) -> None:
        self.redis, self.qk, self.seen = redis, taskq.queue_keys(queue), "0-0"

    async def new(self) -> list[tuple[str, str, str, int]]:
        events = await self.new_events()
        return [(e.job_id, e.type, e.status, e.attempt) for e in events]

    async def new_events(self) -> list[JobEvent]:
        events = await read_after(self.redis, self.qk, self.seen)
        if events:
            self.seen = events[-1].id
        return events


@pytest.fixture
def events(redis: Redis, taskq: Taskq, queue_name: str) -> Events:
    return Events(redis, taskq, queue_name)


async def test_a_job_that_succeeds_is_queued_running_progress_succeeded(
    taskq: Taskq, queue_name: str, events: Events
) -> None:
    job = (await taskq.enqueue("debug.noop", queue=queue_name)).id  # the plain MULTI/EXEC encoding
    assert await events.new() == [(job, "queued", "queued", 0)]
    (claimed,) = (await taskq.claim(queue_name, "w1", 5)).jobs
    assert await events.new() == [(job, "running", "running", 1)]
    assert await taskq.set_progress(queue_name, job, claimed.token, 40, "half way there")
    (progress,) = await events.new_events()
    assert (progress.type, progress.extras) == ("progress", {"percent": 40.0, "message": "half way there"})
    await taskq.complete(queue_name, [Ack(job, claimed.token, "null")], worker_id="w1")
    assert await events.new() == [(job, "succeeded", "succeeded", 1)]


async def test_the_script_encoding_writes_queued_and_scheduled_and_a_repeat_writes_nothing(
    taskq: Taskq, queue_name: str, events: Events
) -> None:
    keyed = (await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k1")).id
    later = (await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=60_000)).id
    got = await events.new_events()
    assert [(e.job_id, e.type, e.status) for e in got] == [
        (keyed, "queued", "queued"),
        (later, "scheduled", "scheduled"),
    ]
    assert got[1].extras["due"] >= got[1].at_ms + 59_000
    # An idempotent repeat changes nothing, so it says nothing.
    await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k1")
    assert await events.new() == []
    # A batch: one event per job, in order.
    batch = await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue_name) for _ in range(3)])
    assert await events.new() == [(b.id, "queued", "queued", 0) for b in batch]


async def test_a_failure_retries_then_dead_letters_then_is_redriven_and_purged(
    taskq: Taskq, redis: Redis, queue_name: str, events: Events
) -> None:
    job = (await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=2)).id
    (claimed,) = (await taskq.claim(queue_name, "w1")).jobs
    await events.new()
    boom = JobError(type="ValueError", message="boom")
    await taskq.fail(queue_name, job, claimed.token, boom)
    (retry,) = await events.new_events()
    assert (retry.type, retry.status, retry.attempt, retry.extras["error"]) == (
        "retry",
        "scheduled",
        1,
        "ValueError",
    )
    await redis.zadd(taskq.queue_keys(queue_name).scheduled, {job: 0})  # due now
    assert await taskq.promote(queue_name) == 1
    assert await events.new() == [(job, "queued", "queued", 1)]
    (claimed,) = (await taskq.claim(queue_name, "w1")).jobs
    assert await events.new() == [(job, "running", "running", 2)]
    await taskq.fail(queue_name, job, claimed.token, boom, reason="max_attempts")
    (failed,) = await events.new_events()
    assert (failed.type, failed.status, failed.attempt) == ("failed", "failed", 2)
    assert failed.extras == {"error": "ValueError", "reason": "max_attempts"}
    assert failed.final
    await taskq.retry_dead(job, queue_name)
    assert await events.new() == [(job, "redriven", "queued", 0)]
    (claimed,) = (await taskq.claim(queue_name, "w1")).jobs
    await taskq.fail(queue_name, job, claimed.token, boom, retryable=False)
    await events.new()
    await taskq.purge_dead(job, queue_name)
    assert await events.new() == [(job, "purged", "purged", 1)]


async def test_cancel_release_and_reap(taskq: Taskq, redis: Redis, queue_name: str, events: Events) -> None:
    waiting = (await taskq.enqueue("debug.noop", queue=queue_name)).id
    await taskq.cancel(waiting, queue_name)
    assert (await events.new())[-1] == (waiting, "cancelled", "cancelled", 0)

    held = (await taskq.enqueue("debug.noop", queue=queue_name)).id
    (claimed,) = (await taskq.claim(queue_name, "w1")).jobs
    await events.new()
    assert await taskq.release(queue_name, [(held, claimed.token)]) == 1
    assert await events.new() == [(held, "released", "queued", 0)]

    (claimed,) = (await taskq.claim(queue_name, "w1")).jobs
    await taskq.cancel(held, queue_name)  # running: only flagged
    assert (await events.new())[-1] == (held, "cancel_requested", "running", 1)
    await taskq.complete(queue_name, [Ack(held, claimed.token, "null", cancelled=True)], worker_id="w1")
    assert await events.new() == [(held, "cancelled", "cancelled", 1)]

    lost = (await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=2)).id
    (claimed,) = (await taskq.claim(queue_name, "w1")).jobs
    await events.new()
    qk = taskq.queue_keys(queue_name)
    await redis.zadd(qk.active, {lost: 0})  # its lease ran out
    await taskq.reap(queue_name)
    assert await events.new() == [(lost, "reaped", "queued", 1)]
    await taskq.claim(queue_name, "w1")
    await events.new()
    await redis.zadd(qk.active, {lost: 0})
    await taskq.reap(queue_name)
    (dead,) = await events.new_events()
    assert (dead.type, dead.status, dead.extras["reason"]) == ("failed", "failed", "worker_lost")


async def test_the_stream_is_capped_and_the_window_says_when_an_id_fell_out(
    redis: Redis, prefix: str, queue_name: str
) -> None:
    config = QueueConfig.of(taskq_prefix=prefix, queues="*", events_max_len=100)
    taskq = Taskq(redis, config)
    qk = taskq.queue_keys(queue_name)
    await taskq.enqueue("debug.noop", queue=queue_name)
    first = (await read_after(redis, qk, "0-0"))[0].id
    assert not (await window(redis, qk)).lost_after(tuple(map(int, first.split("-"))))  # type: ignore[arg-type]
    await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue_name) for _ in range(1000)])
    length = await redis.xlen(qk.event_stream)
    assert length < 400  # trimmed (MAXLEN ~ trims whole nodes of 100 entries)
    w = await window(redis, qk)
    assert w.trimmed
    assert w.lost_after(tuple(map(int, first.split("-"))))  # type: ignore[arg-type]
    assert w.lost_after((w.last[0] + 1, 0))  # never given by this stream: start over too
    assert not w.lost_after(w.last)
