"""From validated HTTP bodies to enqueued jobs: task checks, idempotency fingerprints, the views.

Everything is checked before anything touches Redis, so a request that gets a 4xx wrote nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from producer.problems import FieldError, ProblemError, field_errors
from producer.schemas import EmailAccepted, JobRequest
from taskq import (
    Enqueued,
    EnqueueRequest,
    Job,
    JobPayload,
    JobStatus,
    Taskq,
    TaskRegistry,
    UnknownTask,
    fingerprint_of,
)
from taskq.builtin_tasks import SendEmailArgs


def check_task(
    registry: TaskRegistry, task: str, args: dict[str, Any], loc: Sequence[str | int]
) -> list[FieldError]:
    """Errors of ``args`` against the task's contract (the allow-list), located under ``loc``."""
    try:
        model = registry.get(task).args_model
        try:
            # Python mode, strict: the common case, and never more lenient than JSON mode below.
            model.model_validate(args, strict=True)
        except ValidationError:
            # Strict JSON mode decides: "1" is not a number, 3.0 is an integer, an ISO string is a
            # datetime. (The worker validates again, leniently, before running.)
            model.model_validate_json(orjson.dumps(_integral_floats(args)), strict=True)
    except UnknownTask:
        names = ", ".join(spec.name for spec in registry)
        return [
            FieldError(loc=[*loc, "task"], msg=f"unknown task {task!r}; known: {names}", type="unknown_task")
        ]
    except ValidationError as exc:
        return field_errors(exc.errors(include_input=False, include_url=False), [*loc, "args"])
    return []


def _integral_floats(value: Any) -> Any:
    """A copy for validation only, with 3.0 read as 3 (an integer to JSON Schema); stored args keep
    exactly what the client sent."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats(v) for v in value]
    return value


def check_queue(taskq: Taskq, queue: str | None, loc: Sequence[str | int]) -> list[FieldError]:
    """An error when the request names a queue that is not declared (omitted: the task's own queue,
    declared by construction). The message lists the accepted ones: the fix is in the request."""
    if queue is None or taskq.accepts(queue):
        return []
    names = ", ".join(taskq.declared_queues() or ())
    msg = f"queue {queue!r} is not declared; accepted: {names}"
    return [FieldError(loc=[*loc, "queue"], msg=msg, type="queue_not_declared")]


def raise_invalid(errors: list[FieldError]) -> None:
    if errors:
        raise ProblemError(422, "the request is not valid", slug="validation", errors=errors)


def fingerprint(kind: str, body: BaseModel) -> str:
    """What a repeat with the same Idempotency-Key must match: the route and the parsed body."""
    canonical = orjson.dumps(body.model_dump(mode="json", exclude_unset=True), option=orjson.OPT_SORT_KEYS)
    return fingerprint_of(kind, canonical.decode())


def delay_ms(req: JobRequest, now_ms: int) -> int:
    if req.run_at is not None:
        return max(0, int(req.run_at.timestamp() * 1000) - now_ms)
    return int((req.delay_seconds or 0) * 1000)


def to_enqueue(
    req: JobRequest,
    registry: TaskRegistry,
    now_ms: int,
    idempotency_key: str | None = None,
    fp: str | None = None,
) -> EnqueueRequest:
    """The job to enqueue: what the request says, and for each option it omits the task's own (the one
    place, for every route and the fast path). Not ``Task.request``: that re-validates the args and
    stores the model's dump; the producer stores the args exactly as sent (validated by ``check_task``).
    A task's max_attempts or timeout of None stays None: the deployment's default, applied by core."""
    task = registry.get(req.task)
    return EnqueueRequest(
        task=req.task,
        args=req.args,
        queue=req.queue or task.queue,
        priority=task.priority if req.priority is None else req.priority,
        delay_ms=delay_ms(req, now_ms),
        max_attempts=task.max_attempts if req.max_attempts is None else req.max_attempts,
        timeout=task.timeout_seconds if req.timeout_seconds is None else req.timeout_seconds,
        idempotency_key=idempotency_key,
        fingerprint=fp,
        created_at_ms=now_ms,
    )


def created_view(taskq: Taskq, req: EnqueueRequest, job_id: str, now_ms: int) -> Job:
    """The job as the enqueue script just wrote it, without reading it back (the hot path)."""
    created = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    scheduled = datetime.fromtimestamp((now_ms + req.delay_ms) / 1000, tz=UTC) if req.delay_ms > 0 else None
    return Job.model_construct(
        id=job_id,
        task=req.task,
        args=dict(req.args),
        queue=req.queue,
        priority=req.priority,
        status=JobStatus.SCHEDULED if scheduled else JobStatus.QUEUED,
        attempts=0,
        max_attempts=req.max_attempts or taskq.config.default_max_attempts,
        timeout_seconds=req.timeout or taskq.config.default_timeout,
        created_at=created,
        scheduled_at=scheduled,
        started_at=None,
        finished_at=None,
        result=None,
        error=None,
        progress=None,
        worker=None,
        idempotency_key=req.idempotency_key,
        cancel_requested=False,
    )


def email_job(args: SendEmailArgs) -> JobRequest:
    """POST /send-email is POST /jobs for the send_email task with every option at the task's own."""
    return JobRequest.model_construct(
        task="send_email", args=args.model_dump(mode="json"), queue=None, priority=None,
        delay_seconds=None, run_at=None, max_attempts=None, timeout_seconds=None,
    )  # fmt: skip


def email_accepted(job_id: str) -> bytes:
    return EmailAccepted(job_id=job_id).model_dump_json().encode()


async def view_of(taskq: Taskq, req: EnqueueRequest, done: Enqueued, now_ms: int) -> Job:
    """The job to answer with: built from the request when it was created now, read back when an
    idempotent repeat named an earlier job."""
    if done.created:
        return created_view(taskq, req, done.id, now_ms)
    found = await taskq.job_hash(done.id, req.queue)
    if found is None:
        raise ProblemError(
            409,
            "the job this Idempotency-Key named has expired; send the request with a new key",
            slug="idempotency-expired",
        )
    # The same request gets the same body: the job as first accepted, not as it is now.
    return JobPayload.from_json(found[1].get("payload", b"")).accepted_view()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def enqueue_one(
    taskq: Taskq, registry: TaskRegistry, job: JobRequest, key: str | None, fp: str | None
) -> tuple[EnqueueRequest, Enqueued, int]:
    """Enqueue one checked job: its request, the outcome (created, or an idempotent repeat), and
    the time it was built at."""
    now = now_ms()
    req = to_enqueue(job, registry, now, key, fp)
    if key and fp:
        await taskq.claim_idempotency_key(key, req.queue, fp, req.delay_ms)
    return req, (await taskq.enqueue_many([req]))[0], now
