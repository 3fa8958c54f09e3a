"""Blocking wake-up (no polling) and the pieces of the job model a worker relies on."""

from __future__ import annotations

import pickle
import uuid
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from taskq import Ack, BadMessage, JobPayload, Taskq, TaskRegistry, UnknownTask, new_job_id
from taskq.keys import validate_queue_name
from taskq.models import dumps


async def test_claim_rearms_the_marker_while_work_is_left(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    for _ in range(3):
        await taskq.enqueue("debug.noop", queue=queue_name)
    marker = taskq.queue_keys(queue_name).marker
    await redis.delete(marker)
    await taskq.claim(queue_name, "w", 1)
    assert await redis.zcard(marker) == 1  # another idle worker would wake for the rest


async def test_a_claim_on_an_empty_queue_keeps_the_news_of_a_delayed_job(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    """A delayed job's enqueue sets the marker so a worker about to block recomputes its wait; an
    ack-and-claim by another worker that finds the queue empty must not swallow that news."""
    marker = taskq.queue_keys(queue_name).marker
    await taskq.enqueue("debug.noop", queue=queue_name)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    await redis.delete(marker)
    await taskq.enqueue("debug.noop", queue=queue_name, delay_ms=60_000)
    _, batch = await taskq.complete(queue_name, [Ack(job.id, job.token)], worker_id="w", claim_next=5)
    assert batch.jobs == []
    assert await redis.zcard(marker) == 1  # a worker about to block wakes at once and re-plans


def test_uuid7_ids_are_unique_and_ordered() -> None:
    ids = [new_job_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids[:10])


@pytest.mark.parametrize(
    "raw",
    [
        pickle.dumps({"task": "debug.noop"}),
        b"\x80\x04\x95not json",
        b"[1, 2, 3]",
        b'{"v": 2, "id": "x"}',
        b'{"v": 1, "id": "x", "task": "t"}',
        b'{"v": 1, "id": "x", "task": "t", "args": [], "queue": "q", "priority": 5, '
        b'"max_attempts": 1, "timeout": 1, "created_at": 1}',
    ],
)
def test_bad_payloads_are_refused(raw: bytes) -> None:
    with pytest.raises(BadMessage):
        JobPayload.from_json(raw)


@pytest.mark.parametrize("name", ["", "a b", "q{x}", "q:x", "*", "x" * 65, "-lead"])
def test_queue_names_that_could_break_keys_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="queue name"):
        validate_queue_name(name)


def test_registry_is_an_allow_list_and_debug_tasks_are_opt_in() -> None:
    prod = TaskRegistry.load(debug=False)
    assert "send_email" in prod
    assert "debug.noop" not in prod
    with pytest.raises(UnknownTask):
        prod.validate("os.system", {})
    assert "debug.spin" in TaskRegistry.load(debug=True)


def test_send_email_args_are_validated() -> None:
    from pydantic import ValidationError

    registry = TaskRegistry.load(debug=False)
    ok = registry.validate("send_email", {"recipient_email": "a@example.com", "subject": "s", "body": "b"})
    assert ok.model_dump()["recipient_email"] == "a@example.com"
    for bad in (
        {"recipient_email": "not-an-email", "subject": "s", "body": "b"},
        {"recipient_email": "a@example.com", "subject": "", "body": "b"},
        {"recipient_email": "a@example.com", "subject": "s", "body": "b", "extra": 1},
        {"recipient_email": "a@example.com", "subject": "s" * 999, "body": "b"},
    ):
        with pytest.raises(ValidationError):
            registry.validate("send_email", bad)


async def test_scripts_reload_after_redis_forgets_them(taskq: Taskq, redis: Redis, queue_name: str) -> None:
    """A restarted Redis has an empty script cache: every path, pipelined or not, heals itself."""
    from taskq import EnqueueRequest

    await taskq.enqueue("debug.noop", queue=queue_name)
    job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
    await redis.script_flush()
    assert (await taskq.heartbeat({queue_name: [(job.id, job.token)]}))[(job.id, job.token)] == 1
    await redis.script_flush()
    other = f"{queue_name}-b"
    out = await taskq.enqueue_many(
        [EnqueueRequest("debug.noop", {}, queue=queue_name), EnqueueRequest("debug.noop", {}, queue=other)]
    )
    assert all(e.created for e in out)
    await redis.script_flush()
    assert len((await taskq.claim(other, "w", 5)).jobs) == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), datetime.now(UTC), {1, 2}, b"bytes"], ids=repr)
async def test_args_that_are_not_plain_json_are_refused_before_anything_is_written(
    taskq: Taskq, queue_name: str, bad: object
) -> None:
    with pytest.raises((ValueError, TypeError)):
        await taskq.enqueue("debug.noop", {"nested": [{"x": bad}]}, queue=queue_name)
    assert (await taskq.stats(queue_name)).pending == 0


def test_payload_json_is_compact_utf8_and_keeps_nulls_and_big_ints() -> None:
    assert dumps({"a": None, "é": [1, 2.5, True, "ü"]}) == '{"a":null,"é":[1,2.5,true,"ü"]}'
    assert dumps({1: "x"}) == '{"1":"x"}'
    assert dumps({"big": 2**70}) == '{"big":1180591620717411303424}'
