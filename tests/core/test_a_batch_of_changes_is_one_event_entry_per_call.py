"""A script call that changes many jobs the same way (a claim, an ack batch, the fused ack + claim)
writes one stream entry per run of events, not one per job, and every reader still gets each job's
event, in order, with an id that resumes exactly inside the entry: on a real server."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from taskq import Ack, EnqueueRequest, Taskq
from taskq.job_events import Cursor, JobEvent, read_after, read_blocking


def _entry(event: JobEvent) -> str:
    return event.id.partition(":")[0]


async def _enqueue(taskq: Taskq, queue: str, n: int) -> None:
    await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue)] * n)


async def test_a_claim_and_an_ack_batch_are_one_entry_each_with_every_jobs_event(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    await _enqueue(taskq, queue_name, 5)
    qk = taskq.queue_keys(queue_name)
    before = await redis.xlen(qk.event_stream)
    claimed = (await taskq.claim(queue_name, "w1", 5)).jobs
    assert len(claimed) == 5
    assert await redis.xlen(qk.event_stream) == before + 1  # five 'running' events, one XADD
    oks, _ = await taskq.complete(queue_name, [Ack(j.id, j.token, "null") for j in claimed], worker_id="w1")
    assert oks == [True] * 5
    assert await redis.xlen(qk.event_stream) == before + 2

    events = await read_after(redis, qk, "0-0")
    running = [e for e in events if e.type == "running"]
    succeeded = [e for e in events if e.type == "succeeded"]
    assert [(e.job_id, e.status, e.attempt) for e in running] == [(j.id, "running", 1) for j in claimed]
    assert [(e.job_id, e.status, e.attempt) for e in succeeded] == [(j.id, "succeeded", 1) for j in claimed]
    assert [e.id.partition(":")[2] for e in running] == ["0", "1", "2", "3", "4"]
    assert len({_entry(e) for e in running}) == 1
    assert all(e.at_ms > 0 for e in events)


async def test_a_resume_from_any_event_gets_exactly_the_events_after_it(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    await _enqueue(taskq, queue_name, 4)
    claimed = (await taskq.claim(queue_name, "w1", 4)).jobs
    await taskq.complete(queue_name, [Ack(j.id, j.token, "null") for j in claimed], worker_id="w1")
    qk = taskq.queue_keys(queue_name)
    events = await read_after(redis, qk, "0-0")
    assert len(events) == 12  # queued, running, succeeded for each of the four
    for cut, event in enumerate(events):
        assert await read_after(redis, qk, event.id) == events[cut + 1 :], event.id
        # A small page still never skips the rest of a batch entry.
        assert (await read_after(redis, qk, event.id, count=1))[:1] == events[cut + 1 : cut + 2]

    # A follower blocked on the stream: a cursor inside an entry gets the rest of it at once...
    keys = {queue_name: qk}
    third = next(i for i, e in enumerate(events) if e.type == "running") + 2
    rest = [e for e in events[third + 1 :] if _entry(e) == _entry(events[third])]
    assert len(rest) == 1
    assert await read_blocking(redis, {queue_name: events[third].id}, keys, 100) == rest
    # ...and one at the last event of the last entry waits (nothing new: an empty answer, no loop).
    assert await read_blocking(redis, {queue_name: events[-1].id}, keys, 50) == []
    assert await read_blocking(redis, {queue_name: _entry(events[-1])}, keys, 50) == []


async def test_the_fused_ack_and_claim_keeps_each_jobs_order_and_the_ack_order(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    await _enqueue(taskq, queue_name, 8)
    first = (await taskq.claim(queue_name, "w1", 4)).jobs
    qk = taskq.queue_keys(queue_name)
    mark = (await read_after(redis, qk, "0-0"))[-1].id
    # Outcomes alternate: each change of type starts a new entry, so the stream keeps the ack order.
    acks = [Ack(j.id, j.token, "null", cancelled=i % 2 == 1) for i, j in enumerate(first)]
    _, nxt = await taskq.complete(queue_name, acks, worker_id="w1", claim_next=4)
    events = await read_after(redis, qk, mark)
    assert [(e.job_id, e.type) for e in events] == [
        (first[0].id, "succeeded"), (first[1].id, "cancelled"),
        (first[2].id, "succeeded"), (first[3].id, "cancelled"),
        *((j.id, "running") for j in nxt.jobs),
    ]  # fmt: skip
    assert len(nxt.jobs) == 4
    assert len({_entry(e) for e in events}) == 5  # four single acks, one claim of four
    everything = await read_after(redis, qk, "0-0")
    for job in first + nxt.jobs:
        mine = [e.type for e in everything if e.job_id == job.id]
        assert mine[:2] == ["queued", "running"]


@pytest.mark.parametrize("text", ["q=1-2:3", "a=1-2,b=3-4:0"])
def test_a_cursor_may_point_inside_an_entry(text: str) -> None:
    assert Cursor.parse(text).text() == text


@pytest.mark.parametrize("text", ["q=1-2:", "q=1-2:x", "q=1-2:3:4", "q=1:2"])
def test_a_malformed_position_inside_an_entry_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="event id"):
        Cursor.parse(text)
