"""The fleet registry: each worker writes a TTL'd description of itself with every heartbeat, so
``GET /workers`` lists live workers and a dead one disappears within its TTL without anyone
cleaning up after it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio.client import Pipeline

from taskq.errors import redis_errors
from taskq.models import WorkerInfo, dumps, ms_to_datetime
from taskq.queue import Taskq


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """What a worker says about itself at each heartbeat."""

    id: str
    host: str
    pid: int
    started_at_ms: int
    concurrency: int
    queues: tuple[str, ...]
    jobs: tuple[str, ...]
    #: The tasks it runs (its registry's names).
    tasks: tuple[str, ...] = ()


def queue_beat(pipe: Pipeline, taskq: Taskq, beat: WorkerBeat, ttl_ms: int) -> None:
    """Add the registry writes of one heartbeat to ``pipe`` (they ride the lease renewal's round trip)."""
    now = time.time_ns() // 1_000_000
    key = taskq.keys.worker(beat.id)
    pipe.hset(
        key,
        mapping={
            "host": beat.host,
            "pid": beat.pid,
            "started_at": beat.started_at_ms,
            "last_heartbeat": now,
            "concurrency": beat.concurrency,
            "queues": dumps(list(beat.queues)),
            "jobs": dumps(list(beat.jobs)),
            "tasks": dumps(list(beat.tasks)),
        },
    )
    pipe.pexpire(key, ttl_ms)
    pipe.zadd(taskq.keys.workers, {beat.id: now})


async def beat(taskq: Taskq, beat: WorkerBeat, ttl_ms: int) -> None:
    async with redis_errors():
        pipe = taskq.redis.pipeline(transaction=False)
        queue_beat(pipe, taskq, beat, ttl_ms)
        await pipe.execute()


async def deregister(taskq: Taskq, worker_id: str) -> None:
    async with redis_errors():
        pipe = taskq.redis.pipeline(transaction=False)
        pipe.delete(taskq.keys.worker(worker_id))
        pipe.zrem(taskq.keys.workers, worker_id)
        await pipe.execute()


async def last_beat_ms(taskq: Taskq, worker_id: str) -> int | None:
    async with redis_errors():
        raw = await taskq.redis.hget(taskq.keys.worker(worker_id), "last_heartbeat")
    return None if raw is None else int(raw)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def live_workers(taskq: Taskq) -> list[WorkerInfo]:
    """Workers whose registry entry has not expired, oldest first. Prunes the index of dead ones."""
    async with redis_errors():
        ids = [_text(m) for m in await taskq.redis.zrange(taskq.keys.workers, 0, -1)]
        pipe = taskq.redis.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hgetall(taskq.keys.worker(worker_id))
        rows = await pipe.execute() if ids else []
        gone = [worker_id for worker_id, row in zip(ids, rows, strict=True) if not row]
        if gone:
            await taskq.redis.zrem(taskq.keys.workers, *gone)
    out: list[WorkerInfo] = []
    for worker_id, row in zip(ids, rows, strict=True):
        if not row:
            continue
        fields = {k.decode(): v.decode() for k, v in row.items()}
        started = ms_to_datetime(int(fields.get("started_at", "0"))) or datetime.now(UTC)
        last = ms_to_datetime(int(fields.get("last_heartbeat", "0"))) or started
        out.append(
            WorkerInfo(
                id=worker_id,
                host=fields.get("host", ""),
                pid=int(fields.get("pid", "0")),
                started_at=started,
                last_heartbeat=last,
                concurrency=int(fields.get("concurrency", "0")),
                queues=json.loads(fields.get("queues", "[]")),
                jobs=json.loads(fields.get("jobs", "[]")),
                tasks=json.loads(fields.get("tasks", "[]")),
            )
        )
    return out
