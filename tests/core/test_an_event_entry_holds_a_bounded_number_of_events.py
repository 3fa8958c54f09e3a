"""A stream entry holds at most EVENTS_PER_ENTRY events, so a stream capped at EVENTS_MAX_LEN entries
has a memory bound whatever the batch sizes (a claim of 100 must not make one 4 KB entry); and each
job still gets its event, in order, across the entries."""

from __future__ import annotations

import math

from redis.asyncio import Redis

from taskq import EnqueueRequest, Taskq
from taskq.constants import EVENTS_PER_ENTRY
from taskq.job_events import read_after


async def test_a_claim_of_many_is_split_into_bounded_entries(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    n = 3 * EVENTS_PER_ENTRY + 2
    await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue_name)] * n)
    qk = taskq.queue_keys(queue_name)
    before = await read_after(redis, qk, "0-0")
    entries_before = await redis.xlen(qk.event_stream)
    claimed = (await taskq.claim(queue_name, "w1", n)).jobs
    assert len(claimed) == n
    assert await redis.xlen(qk.event_stream) == entries_before + math.ceil(n / EVENTS_PER_ENTRY)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(qk.event_stream)  # type: ignore[assignment]
    for entry_id, fields in entries:
        jobs = fields.get(b"jobs")
        if jobs is not None:
            assert len(jobs.split()) <= 2 * EVENTS_PER_ENTRY, entry_id
    running = [e for e in await read_after(redis, qk, before[-1].id) if e.type == "running"]
    assert [e.job_id for e in running] == [j.id for j in claimed]
