"""Every state change of the core engine, through the real Lua scripts on a real server."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from taskq import (
    Ack,
    IdempotencyConflict,
    InvalidTransition,
    JobError,
    JobNotFound,
    JobPayload,
    JobStatus,
    PayloadTooLarge,
    QueueConfig,
    QueueFull,
    Taskq,
)


async def test_enqueue_stores_a_queued_job_with_its_fields(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue(
        "send_email", {"recipient_email": "a@example.com"}, queue=queue_name, priority=7
    )
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert enq.created
    assert job.status is JobStatus.QUEUED
    assert (job.task, job.queue, job.priority, job.attempts) == ("send_email", queue_name, 7, 0)
    assert job.args == {"recipient_email": "a@example.com"}
    assert job.created_at.tzinfo is not None
    assert queue_name in await taskq.queues()


async def test_payload_is_json_never_pickle(taskq: Taskq, redis: Redis, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.noop", {"tag": "x"}, queue=queue_name)
    raw = await redis.hget(taskq.queue_keys(queue_name).job(enq.id), "payload")
    assert isinstance(raw, bytes)
    doc = json.loads(raw)
    assert doc["v"] == 1
    assert doc["task"] == "debug.noop"


async def test_claim_moves_job_to_active_with_lease_and_token(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    batch = await taskq.claim(queue_name, "w1", 10)
    assert [j.id for j in batch.jobs] == [enq.id]
    claimed = batch.jobs[0]
    assert claimed.attempts == 1
    assert claimed.payload().task == "debug.noop"
    qk = taskq.queue_keys(queue_name)
    deadline = await redis.zscore(qk.active, enq.id)
    assert deadline is not None
    assert await redis.zcard(qk.pending) == 0
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert job.status is JobStatus.RUNNING
    assert job.worker == "w1"
    assert job.started_at is not None


async def test_claim_respects_priority_then_fifo(taskq: Taskq, queue_name: str) -> None:
    low = [(await taskq.enqueue("debug.noop", queue=queue_name, priority=1)).id for _ in range(3)]
    high = [(await taskq.enqueue("debug.noop", queue=queue_name, priority=9)).id for _ in range(3)]
    mid = [(await taskq.enqueue("debug.noop", queue=queue_name)).id for _ in range(3)]
    batch = await taskq.claim(queue_name, "w", 9)
    assert [j.id for j in batch.jobs] == high + mid + low


async def test_batch_claim_takes_at_most_n(taskq: Taskq, queue_name: str) -> None:
    for _ in range(5):
        await taskq.enqueue("debug.noop", queue=queue_name)
    assert len((await taskq.claim(queue_name, "w", 3)).jobs) == 3
    assert len((await taskq.claim(queue_name, "w", 3)).jobs) == 2
    assert (await taskq.claim(queue_name, "w", 3)).jobs == []


async def test_each_claim_gets_a_new_fencing_token(taskq: Taskq, queue_name: str) -> None:
    await taskq.enqueue("debug.noop", queue=queue_name)
    await taskq.enqueue("debug.noop", queue=queue_name)
    tokens = [j.token for j in (await taskq.claim(queue_name, "w", 2)).jobs]
    assert len(set(tokens)) == 2


async def test_delayed_job_is_scheduled_then_promoted_by_claim(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    # A delay no loaded host spends between the enqueue and the first claim, or that claim takes it.
    enq = await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=1000)
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert job.status is JobStatus.SCHEDULED
    assert job.scheduled_at is not None
    first = await taskq.claim(queue_name, "w", 1)
    assert first.jobs == []
    assert first.next_due_ms is not None
    assert 0 < first.next_due_ms <= 1000
    await asyncio.sleep(first.next_due_ms / 1000 + 0.02)  # waiting out the delay is the behaviour under test
    second = await taskq.claim(queue_name, "w", 1)
    assert [j.id for j in second.jobs] == [enq.id]


async def test_promote_moves_due_jobs(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=1)
    await asyncio.sleep(0.01)
    assert await taskq.promote(queue_name) == 1
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert job.status is JobStatus.QUEUED


async def test_heartbeat_extends_lease_only_with_current_token(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    qk = taskq.queue_keys(queue_name)
    await redis.zadd(qk.active, {enq.id: 1})  # pretend the deadline is long past
    codes = await taskq.heartbeat({queue_name: [(job.id, job.token)]})
    assert codes[(job.id, job.token)] == 1
    assert (await redis.zscore(qk.active, enq.id) or 0) > 1
    stale = await taskq.heartbeat({queue_name: [(job.id, job.token + 1000)]})
    assert stale[(job.id, job.token + 1000)] == -2


async def test_complete_stores_result_with_ttl(taskq: Taskq, redis: Redis, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    ok, _ = await taskq.complete(queue_name, [Ack(job.id, job.token, '{"answer": 42}')])
    assert ok == [True]
    again, _ = await taskq.complete(queue_name, [Ack(job.id, job.token, '{"answer": 0}')])
    assert again == [False]  # a repeated ack finds no holder: it cannot overwrite or double-count
    stored = await taskq.get_job(enq.id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.result == {"answer": 42}
    assert stored.finished_at is not None
    ttl = await redis.pttl(taskq.queue_keys(queue_name).job(enq.id))
    assert 0 < ttl <= taskq.config.result_ttl_ms
    assert await redis.zcard(taskq.queue_keys(queue_name).active) == 0
    stats = await taskq.stats(queue_name)
    assert stats.counters["succeeded"] == 1
    assert stats.processed_total == 1


async def test_complete_with_stale_token_is_refused_and_counted(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    old = (await taskq.claim(queue_name, "w-old", 1)).jobs[0]
    # The old holder is cut off; its lease expires and another worker takes the job.
    await taskq.redis.zadd(taskq.queue_keys(queue_name).active, {enq.id: 0})
    await taskq.reap(queue_name)
    new = (await taskq.claim(queue_name, "w-new", 1)).jobs[0]
    assert new.token != old.token
    ok, _ = await taskq.complete(queue_name, [Ack(old.id, old.token, '"late"')])
    assert ok == [False]
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert job.status is JobStatus.RUNNING
    assert job.worker == "w-new"
    assert (await taskq.stats(queue_name)).counters["stale_acks"] == 1
    assert await taskq.fail(queue_name, old.id, old.token, JobError(type="X", message="late")) is None
    ok, _ = await taskq.complete(queue_name, [Ack(new.id, new.token, '"fresh"')])
    assert ok == [True]
    done = await taskq.get_job(enq.id)
    assert done is not None
    assert done.result == "fresh"


async def test_complete_hands_back_the_next_batch(taskq: Taskq, queue_name: str) -> None:
    ids = [(await taskq.enqueue("debug.noop", queue=queue_name)).id for _ in range(4)]
    first = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    ok, batch = await taskq.complete(queue_name, [Ack(first.id, first.token)], worker_id="w", claim_next=2)
    assert ok == [True]
    assert [j.id for j in batch.jobs] == ids[1:3]


async def test_fail_retries_with_backoff_into_scheduled(taskq: Taskq, redis: Redis, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.fail", queue=queue_name, max_attempts=3)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    status = await taskq.fail(
        queue_name, job.id, job.token, JobError(type="ValueError", message="boom"), attempts=job.attempts
    )
    assert status is JobStatus.SCHEDULED
    stored = await taskq.get_job(enq.id)
    assert stored is not None
    assert stored.status is JobStatus.SCHEDULED
    assert stored.error is not None
    assert stored.error.type == "ValueError"
    due = await redis.zscore(taskq.queue_keys(queue_name).scheduled, enq.id)
    assert due is not None
    stats = await taskq.stats(queue_name)
    assert (stats.counters["failed"], stats.counters["retried"], stats.scheduled) == (1, 1, 1)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    config = QueueConfig.of(retry_backoff_base_seconds=0.1, retry_backoff_max_seconds=1)
    for attempts, ceiling in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1_000), (20, 1_000)]:
        samples = {config.backoff_ms(attempts) for _ in range(50)}
        assert all(ceiling // 2 <= s <= ceiling for s in samples)
        assert len(samples) > 1  # jittered


async def test_fail_dead_letters_when_attempts_are_exhausted(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.fail", queue=queue_name, max_attempts=1)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    status = await taskq.fail(queue_name, job.id, job.token, JobError(type="ValueError", message="boom"))
    assert status is JobStatus.FAILED
    stored = await taskq.get_job(enq.id)
    assert stored is not None
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert (stored.error.type, stored.error.reason) == ("ValueError", "error")
    page = await taskq.dead_letters(queue_name)
    assert page.job_ids == [enq.id]
    assert (await taskq.stats(queue_name)).dead == 1


async def test_non_retryable_error_dead_letters_at_once(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.fail", queue=queue_name, max_attempts=5)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    status = await taskq.fail(
        queue_name,
        job.id,
        job.token,
        JobError(type="Bad", message="no"),
        retryable=False,
        reason="non_retryable",
    )
    assert status is JobStatus.FAILED
    stored = await taskq.get_job(enq.id)
    assert stored is not None
    assert stored.error is not None
    assert stored.error.reason == "non_retryable"
    assert stored.attempts == 1


async def test_release_hands_back_without_attempt_penalty(taskq: Taskq, queue_name: str) -> None:
    first = await taskq.enqueue("debug.noop", queue=queue_name)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    later = await taskq.enqueue("debug.noop", queue=queue_name)
    assert await taskq.release(queue_name, [(job.id, job.token)]) == 1
    stored = await taskq.get_job(first.id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (JobStatus.QUEUED, 0)
    # Handed-back work goes ahead of work enqueued after it.
    assert [j.id for j in (await taskq.claim(queue_name, "w2", 2)).jobs] == [first.id, later.id]
    assert await taskq.release(queue_name, [(job.id, job.token)]) == 0  # stale token: nothing


async def test_reap_requeues_expired_lease_with_attempt_counted(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=2)
    await taskq.claim(queue_name, "w", 1)
    await taskq.redis.zadd(taskq.queue_keys(queue_name).active, {enq.id: 0})
    result = await taskq.reap(queue_name)
    assert (result.ran, result.requeued, result.dead) == (True, 1, 0)
    again = (await taskq.claim(queue_name, "w2", 1)).jobs[0]
    assert again.attempts == 2
    assert (await taskq.stats(queue_name)).counters["lost"] == 1


async def test_reap_dead_letters_worker_lost_after_max_attempts(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=2)
    for _ in range(2):
        await taskq.claim(queue_name, "w", 1)
        await taskq.redis.zadd(taskq.queue_keys(queue_name).active, {enq.id: 0})
        await taskq.reap(queue_name)
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.reason == "worker_lost"
    assert (await taskq.dead_letters(queue_name)).job_ids == [enq.id]


async def test_reap_leaves_live_leases_alone(taskq: Taskq, queue_name: str) -> None:
    await taskq.enqueue("debug.noop", queue=queue_name)
    await taskq.claim(queue_name, "w", 1)
    assert (await taskq.reap(queue_name)).requeued == 0
    assert (await taskq.stats(queue_name)).running == 1


async def test_reap_runs_once_per_interval_across_callers(taskq: Taskq, queue_name: str) -> None:
    results = await asyncio.gather(
        *(taskq.reap(queue_name, lock_seconds=30, owner=f"w{i}") for i in range(10))
    )
    assert sum(r.ran for r in results) == 1


async def test_cancel_queued_and_scheduled_at_once(taskq: Taskq, queue_name: str) -> None:
    queued = await taskq.enqueue("debug.noop", queue=queue_name)
    scheduled = await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=60_000)
    assert await taskq.cancel(queued.id) is JobStatus.CANCELLED
    assert await taskq.cancel(scheduled.id) is JobStatus.CANCELLED
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.scheduled) == (0, 0)
    assert (await taskq.claim(queue_name, "w", 5)).jobs == []
    job = await taskq.get_job(queued.id)
    assert job is not None
    assert job.status is JobStatus.CANCELLED


async def test_cancel_running_sets_flag_seen_at_heartbeat(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.sleep", {"seconds": 10}, queue=queue_name)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    assert await taskq.cancel(enq.id) is JobStatus.RUNNING
    codes = await taskq.heartbeat({queue_name: [(job.id, job.token)]})
    assert codes[(job.id, job.token)] == 3
    ok, _ = await taskq.complete(queue_name, [Ack(job.id, job.token, cancelled=True)])
    assert ok == [True]
    stored = await taskq.get_job(enq.id)
    assert stored is not None
    assert stored.status is JobStatus.CANCELLED


async def test_cancel_requested_job_whose_worker_died_is_cancelled_not_rerun(
    taskq: Taskq, queue_name: str
) -> None:
    enq = await taskq.enqueue("debug.sleep", {"seconds": 10}, queue=queue_name)
    await taskq.claim(queue_name, "w", 1)
    await taskq.cancel(enq.id)
    await taskq.redis.zadd(taskq.queue_keys(queue_name).active, {enq.id: 0})
    await taskq.reap(queue_name)
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert job.status is JobStatus.CANCELLED
    assert (await taskq.claim(queue_name, "w", 1)).jobs == []


async def test_cancel_requested_job_that_fails_is_not_retried(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.fail", queue=queue_name, max_attempts=5)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    await taskq.cancel(enq.id)
    status = await taskq.fail(queue_name, job.id, job.token, JobError(type="E", message="m"))
    assert status is JobStatus.CANCELLED
    assert (await taskq.stats(queue_name)).scheduled == 0


async def test_cancel_finished_job_is_refused(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    await taskq.complete(queue_name, [Ack(job.id, job.token)])
    with pytest.raises(InvalidTransition):
        await taskq.cancel(enq.id)
    with pytest.raises(JobNotFound):
        await taskq.cancel("01234567-89ab-7def-8123-456789abcdef")


async def test_dead_letter_retry_and_purge(taskq: Taskq, queue_name: str) -> None:
    ids = []
    for _ in range(2):
        enq = await taskq.enqueue("debug.fail", queue=queue_name, max_attempts=1)
        job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
        await taskq.fail(queue_name, job.id, job.token, JobError(type="E", message="m"))
        ids.append(enq.id)
    await taskq.retry_dead(ids[0])
    retried = await taskq.get_job(ids[0])
    assert retried is not None
    assert (retried.status, retried.attempts, retried.error) == (JobStatus.QUEUED, 0, None)
    assert [j.id for j in (await taskq.claim(queue_name, "w", 1)).jobs] == [ids[0]]
    await taskq.purge_dead(ids[1])
    assert await taskq.get_job(ids[1]) is None
    assert (await taskq.dead_letters(queue_name)).job_ids == []
    with pytest.raises(JobNotFound):
        await taskq.retry_dead(ids[1])


async def test_dead_letters_paginate_without_gaps_or_repeats(taskq: Taskq, queue_name: str) -> None:
    expected = set()
    for _ in range(7):
        enq = await taskq.enqueue("debug.fail", queue=queue_name, max_attempts=1)
        job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
        await taskq.fail(queue_name, job.id, job.token, JobError(type="E", message="m"))
        expected.add(enq.id)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await taskq.dead_letters(queue_name, limit=3, cursor=cursor)
        seen += page.job_ids
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(expected)


async def test_progress_only_for_current_holder(taskq: Taskq, queue_name: str) -> None:
    enq = await taskq.enqueue("debug.sleep", {"seconds": 1}, queue=queue_name)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    assert await taskq.set_progress(queue_name, job.id, job.token, 40, "halfway-ish")
    assert not await taskq.set_progress(queue_name, job.id, job.token + 1, 90)
    stored = await taskq.get_job(enq.id)
    assert stored is not None
    assert stored.progress is not None
    assert (stored.progress.percent, stored.progress.message) == (40, "halfway-ish")


async def test_idempotent_enqueue_returns_first_job(taskq: Taskq, queue_name: str) -> None:
    first = await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k1", fingerprint="a")
    again = await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k1", fingerprint="a")
    assert first.created
    assert not again.created
    assert again.id == first.id
    assert (await taskq.stats(queue_name)).pending == 1
    with pytest.raises(IdempotencyConflict):
        await taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="k1", fingerprint="b")


async def test_conflicting_batch_under_a_used_key_writes_nothing(taskq: Taskq, queue_name: str) -> None:
    from taskq import EnqueueRequest

    first = [EnqueueRequest("debug.noop", {}, queue=queue_name, idempotency_key="k#0", fingerprint="A")]
    await taskq.enqueue_many(first)
    longer = [
        EnqueueRequest("debug.noop", {}, queue=queue_name, idempotency_key=f"k#{i}", fingerprint="B")
        for i in range(3)
    ]
    with pytest.raises(IdempotencyConflict):
        await taskq.enqueue_many(longer)
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.counters["enqueued"]) == (1, 1)


async def test_key_without_fingerprint_returns_the_first_job(taskq: Taskq, queue_name: str) -> None:
    first = await taskq.enqueue("debug.noop", {"tag": "a"}, queue=queue_name, idempotency_key="cron:tick:1")
    again = await taskq.enqueue("debug.noop", {"tag": "b"}, queue=queue_name, idempotency_key="cron:tick:1")
    assert (again.id, again.created) == (first.id, False)


async def test_accepted_view_is_what_a_repeat_answers(taskq: Taskq, queue_name: str) -> None:
    from taskq import EnqueueRequest

    req = EnqueueRequest(
        "debug.noop",
        {},
        queue=queue_name,
        delay_ms=5_000,
        idempotency_key="v",
        fingerprint="f",
        created_at_ms=1_000,
    )
    enq = (await taskq.enqueue_many([req]))[0]
    found = await taskq.job_hash(enq.id)
    assert found is not None
    view = JobPayload.from_json(found[1]["payload"]).accepted_view()
    assert (view.status, view.attempts, view.idempotency_key) == (JobStatus.SCHEDULED, 0, "v")
    assert view.created_at.timestamp() == 1.0
    assert view.scheduled_at is not None
    assert view.scheduled_at.timestamp() == 6.0


async def test_multi_queue_batch_over_a_full_queue_writes_nothing(
    redis: Redis, prefix: str, queue_name: str
) -> None:
    from taskq import EnqueueRequest

    small = Taskq(redis, QueueConfig.of(taskq_prefix=prefix, queue_max_depth=2, queues="*"))
    other = f"{queue_name}-other"
    await small.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue_name)] * 2)
    with pytest.raises(QueueFull):
        await small.enqueue_many(
            [
                EnqueueRequest("debug.noop", {}, queue=other),
                EnqueueRequest("debug.noop", {}, queue=queue_name),
            ]
        )
    assert (await small.stats(other)).pending == 0


async def test_fifty_concurrent_enqueues_with_one_key_make_one_job(taskq: Taskq, queue_name: str) -> None:
    results = await asyncio.gather(
        *(
            taskq.enqueue("debug.noop", queue=queue_name, idempotency_key="same", fingerprint="fp")
            for _ in range(50)
        )
    )
    assert len({r.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.counters["enqueued"]) == (1, 1)


async def test_enqueue_many_is_atomic_per_queue_and_keeps_order(taskq: Taskq, queue_name: str) -> None:
    from taskq import EnqueueRequest

    reqs = [EnqueueRequest("debug.noop", {"tag": str(i)}, queue=queue_name) for i in range(100)]
    out = await taskq.enqueue_many(reqs)
    assert len(out) == 100
    assert all(o.created for o in out)
    claimed = (await taskq.claim(queue_name, "w", 100)).jobs
    assert [c.payload().args["tag"] for c in claimed] == [str(i) for i in range(100)]


async def test_large_batches_enqueue_and_claim_whole(taskq: Taskq, queue_name: str) -> None:
    from taskq import EnqueueRequest

    out = await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue_name)] * 5000)
    assert len({o.id for o in out}) == 5000
    claimed = (await taskq.claim(queue_name, "w", 3000)).jobs
    assert len(claimed) == 3000
    ok, _ = await taskq.complete(queue_name, [Ack(j.id, j.token) for j in claimed])
    assert all(ok)
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.running, stats.counters["succeeded"]) == (2000, 0, 3000)


async def test_queue_max_depth_refuses_and_writes_nothing(redis: Redis, prefix: str, queue_name: str) -> None:
    from taskq import EnqueueRequest

    small = Taskq(redis, QueueConfig.of(taskq_prefix=prefix, queue_max_depth=3, queues="*"))
    for _ in range(2):
        await small.enqueue("debug.noop", queue=queue_name)
    with pytest.raises(QueueFull):
        await small.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue_name)] * 2)
    assert (await small.stats(queue_name)).pending == 2
    await small.enqueue("debug.noop", queue=queue_name)
    with pytest.raises(QueueFull):
        await small.enqueue("debug.noop", queue=queue_name)


async def test_oversized_payload_is_refused_before_redis(redis: Redis, prefix: str, queue_name: str) -> None:
    small = Taskq(redis, QueueConfig.of(taskq_prefix=prefix, max_payload_bytes=1024, queues="*"))
    with pytest.raises(PayloadTooLarge):
        await small.enqueue("debug.noop", {"tag": "x" * 2000}, queue=queue_name)
    assert await small.queues() == []


async def test_finished_jobs_expire(redis: Redis, prefix: str, queue_name: str) -> None:
    short = Taskq(redis, QueueConfig.of(taskq_prefix=prefix, result_ttl_seconds=1, queues="*"))
    enq = await short.enqueue("debug.noop", queue=queue_name)
    job = (await short.claim(queue_name, "w", 1)).jobs[0]
    await short.complete(queue_name, [Ack(job.id, job.token)])
    key = short.queue_keys(queue_name).job(enq.id)
    deadline = asyncio.get_running_loop().time() + 5
    while await redis.exists(key):
        assert asyncio.get_running_loop().time() < deadline, "finished job never expired"
        await asyncio.sleep(0.02)


async def test_claim_drops_ids_whose_job_hash_is_gone(taskq: Taskq, redis: Redis, queue_name: str) -> None:
    qk = taskq.queue_keys(queue_name)
    await redis.zadd(qk.pending, {"01234567-89ab-7def-8123-456789abcdef": 0})
    real = await taskq.enqueue("debug.noop", queue=queue_name)
    assert [j.id for j in (await taskq.claim(queue_name, "w", 5)).jobs] == [real.id]


async def test_stats_report_depths_counters_and_oldest_age(taskq: Taskq, queue_name: str) -> None:
    await taskq.enqueue("debug.noop", queue=queue_name, priority=9)
    await taskq.enqueue("debug.noop", queue=queue_name, priority=0)
    await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=60_000)
    await taskq.claim(queue_name, "w", 1)
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.scheduled, stats.running, stats.dead) == (1, 1, 1, 0)
    assert stats.oldest_pending_age_seconds is not None
    assert 0 <= stats.oldest_pending_age_seconds < 60
    assert stats.counters["enqueued"] == 3
