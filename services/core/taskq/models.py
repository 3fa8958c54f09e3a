"""The job model: what is stored (JSON only, schema-versioned) and what callers see.

State machine (one ``JobStatus`` per job, held in the job hash and mirrored by the set the id is in)::

    enqueue ──▶ queued ◀──────── release (graceful stop, no attempt used)
       │          │  ▲  ◀──────── reap (lease expired, attempts left) / dead-letter retry
       ▼          │  │ promote (due)
    scheduled ────┼──┘
       ▲          ▼ claim (lease + fencing token)
       └─ fail ◀ running ──complete──▶ succeeded
        (retry)   │   └──cancel flag seen──▶ cancelled
                  ▼ fail (no attempts left / non-retryable) or reap (worker_lost, no attempts left)
                failed (dead-lettered)
    queued / scheduled ──cancel──▶ cancelled
"""

from __future__ import annotations

import enum
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from taskq.errors import BadMessage as TaskqBadMessage

#: Version of the stored payload envelope. A worker refuses (dead-letters) any other version.
SCHEMA_VERSION = 1


class JobStatus(str, enum.Enum):
    QUEUED = "queued"  # ready to run, in the pending set
    SCHEDULED = "scheduled"  # waiting for its time: delayed, or backing off before a retry
    RUNNING = "running"  # held by a worker under a lease
    SUCCEEDED = "succeeded"  # finished; result stored until the result TTL
    FAILED = "failed"  # terminal: dead-lettered with a reason
    CANCELLED = "cancelled"  # stopped on request before or while running

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class DeadReason(str, enum.Enum):
    """Why a job was dead-lettered."""

    ERROR = "error"  # the handler raised and no attempts are left
    NON_RETRYABLE = "non_retryable"  # the handler raised an error marked permanent
    TIMEOUT = "timeout"  # the handler ran past its timeout on its last attempt
    WORKER_LOST = "worker_lost"  # the lease expired (worker died) and no attempts are left
    BAD_MESSAGE = "bad_message"  # the stored message is not a valid taskq job
    UNKNOWN_TASK = "unknown_task"  # no handler is registered under the task name
    INVALID_ARGS = "invalid_args"  # the args do not validate against the task's model
    PAYLOAD_TOO_LARGE = "payload_too_large"  # the stored payload exceeds the size limit


_uuid7_lock = threading.Lock()
_uuid7_last = 0
#: Random bytes for ``new_job_id``, read from the OS 256 ids at a time (one system call, not one per
#: job); dropped in a forked child, which would otherwise make its parent's ids.
_NOISE_BYTES = 10 * 256
_noise = b""
_noise_at = 0


def _drop_noise() -> None:
    global _noise, _noise_at
    _noise, _noise_at = b"", 0


os.register_at_fork(after_in_child=_drop_noise)


def new_job_id() -> str:
    """A UUIDv7: time-ordered, so jobs enqueued in the same millisecond by one process keep their order.

    Pending jobs of equal priority and millisecond tie in the sorted set and are then ordered by
    member, i.e. by this id. The 74 low bits are a counter that starts at a random value each ms.
    """
    # ``new_job_ids`` for one id, without its list and loop: every single enqueue pays for this.
    global _uuid7_last, _noise, _noise_at
    with _uuid7_lock:
        if _noise_at >= len(_noise):
            _noise, _noise_at = os.urandom(_NOISE_BYTES), 0
        noise = int.from_bytes(_noise[_noise_at : _noise_at + 10]) >> 6
        _noise_at += 10
        candidate = ((time.time_ns() // 1_000_000) << 74) | noise
        if candidate <= _uuid7_last:
            candidate = _uuid7_last + 1
        _uuid7_last = candidate
    return _uuid7_text(candidate)


def new_job_ids(n: int) -> list[str]:
    """``n`` ids as ``new_job_id`` makes them, in increasing order, for the cost of one lock, one
    clock read and one read of the random source (a bulk enqueue needs one id per job)."""
    global _uuid7_last
    noise = os.urandom(10 * n)
    with _uuid7_lock:
        ms = time.time_ns() // 1_000_000
        last = _uuid7_last
        values = []
        for i in range(0, 10 * n, 10):
            candidate = (ms << 74) | (int.from_bytes(noise[i : i + 10]) >> 6)
            # Never go backwards within a process, even if the clock does or the random part rolls.
            if candidate <= last:
                candidate = last + 1
            last = candidate
            values.append(candidate)
        _uuid7_last = last
    return [_uuid7_text(v) for v in values]


def _uuid7_text(candidate: int) -> str:
    rand_a = (candidate >> 62) & 0xFFF
    rand_b = candidate & ((1 << 62) - 1)
    value = ((candidate >> 74) << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{value:032x}"  # formatting by hand: uuid.UUID() costs several times more on the hot path
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def ms_to_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# The strict reference encoder, built once (json.dumps with options builds one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# orjson writes the same compact UTF-8 JSON several times faster (every enqueue encodes a payload).
# Passthrough makes it refuse what the stdlib refuses (datetimes, dataclasses, str/int subclasses).
_ORJSON = (
    orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dumps(value: Any) -> str:
    """Compact JSON, refusing NaN/Infinity (they are not JSON and other languages choke on them)
    and anything that is not plain JSON data (TypeError, as ``json.dumps`` would)."""
    try:
        raw = orjson.dumps(value, option=_ORJSON)
    except TypeError:  # not JSON data, or an int beyond 64 bits: the stdlib's answer (error or text)
        return _ENCODER.encode(value)
    if b"null" in raw:  # orjson writes NaN and Infinity as null: let the strict encoder judge
        return _ENCODER.encode(value)
    return raw.decode()


@dataclass(slots=True)
class JobPayload:
    """The immutable part of a job, stored as one JSON document in the job hash.

    Not a frozen dataclass only for speed: a frozen one's ``__init__`` goes through
    ``object.__setattr__`` per field, which was a third of a bulk enqueue's preparation. Treat it
    as read-only; what is stored in Redis never changes."""

    id: str
    task: str
    args: dict[str, Any]
    queue: str
    priority: int
    max_attempts: int
    timeout: float
    created_at: int  # ms since the epoch, producer clock
    idempotency_key: str | None = None
    run_at: int | None = None  # ms since the epoch, producer clock: when a delayed job was due

    def accepted_view(self) -> Job:
        """The job as it was when accepted. An idempotent repeat answers with exactly this, so the
        same request gets the same body however far the job has got since."""
        return Job(
            id=self.id,
            task=self.task,
            args=self.args,
            queue=self.queue,
            priority=self.priority,
            status=JobStatus.SCHEDULED if self.run_at is not None else JobStatus.QUEUED,
            attempts=0,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout,
            created_at=_dt(self.created_at),
            scheduled_at=None if self.run_at is None else _dt(self.run_at),
            idempotency_key=self.idempotency_key,
        )

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "id": self.id,
            "task": self.task,
            "args": self.args,
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "created_at": self.created_at,
        }
        if self.idempotency_key is not None:
            doc["idempotency_key"] = self.idempotency_key
        if self.run_at is not None:
            doc["run_at"] = self.run_at
        return dumps(doc)

    @classmethod
    def from_json(cls, raw: bytes | str) -> JobPayload:
        """Parse a stored payload; raises ``BadMessage`` for anything that is not a v1 taskq job."""
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise TaskqBadMessage("payload is not JSON (pickle or other binary data?)") from exc
        if not isinstance(doc, dict):
            raise TaskqBadMessage("payload is not a JSON object")
        if doc.get("v") != SCHEMA_VERSION:
            raise TaskqBadMessage(f"unsupported payload schema version {doc.get('v')!r}")
        try:
            payload = cls(
                id=_typed(doc, "id", str),
                task=_typed(doc, "task", str),
                args=_typed(doc, "args", dict),
                queue=_typed(doc, "queue", str),
                priority=_typed(doc, "priority", int),
                max_attempts=_typed(doc, "max_attempts", int),
                timeout=float(_typed(doc, "timeout", (int, float))),
                created_at=_typed(doc, "created_at", int),
                idempotency_key=doc.get("idempotency_key"),
                run_at=doc.get("run_at"),
            )
        except (KeyError, TypeError) as exc:
            raise TaskqBadMessage(f"payload does not match the job schema: {exc}") from exc
        return payload


def _typed(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"field {name!r} has the wrong type")
    return value


class JobError(BaseModel):
    """What went wrong, as shown to API users: exception type and message, never a traceback."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(description="Exception class name, or the taskq reason for system failures")
    message: str = Field(description="Exception message (truncated)")
    reason: str | None = Field(default=None, description="Dead-letter reason when the job failed for good")


class Progress(BaseModel):
    model_config = ConfigDict(extra="ignore")

    percent: float = Field(ge=0, le=100)
    message: str | None = None


class Job(BaseModel):
    """A job as read back from Redis."""

    id: str
    task: str
    args: dict[str, Any]
    queue: str
    priority: int
    status: JobStatus
    attempts: int
    max_attempts: int
    timeout_seconds: float
    created_at: datetime
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: Any = None
    error: JobError | None = None
    progress: Progress | None = None
    worker: str | None = None
    idempotency_key: str | None = None
    cancel_requested: bool = False


def job_from_hash(job_id: str, queue: str, fields: Mapping[str, bytes]) -> Job:
    """Build the API view of a job from its raw hash. A hash whose payload is not a valid job (a bad
    message written by hand) still reads back, with what can be known, so it can be inspected."""
    try:
        payload: JobPayload | None = JobPayload.from_json(fields.get("payload", b""))
    except TaskqBadMessage:
        payload = None

    def text(name: str) -> str | None:
        raw = fields.get(name)
        return None if raw is None else raw.decode("utf-8", "replace")

    def ms(name: str) -> datetime | None:
        raw = fields.get(name)
        return None if raw is None else ms_to_datetime(int(raw))

    def parsed(name: str) -> Any:
        raw = fields.get(name)
        return None if raw is None else json.loads(raw)

    error = None
    if (raw_error := parsed("error")) is not None:
        error = JobError.model_validate({**raw_error, "reason": text("reason")})
    progress = parsed("progress")
    return Job(
        id=job_id,
        task=payload.task if payload else "",
        args=payload.args if payload else {},
        queue=queue,
        priority=payload.priority if payload else int(fields.get("priority", b"5")),
        status=JobStatus(text("status") or "queued"),
        attempts=int(fields.get("attempts", b"0")),
        max_attempts=payload.max_attempts if payload else 1,
        timeout_seconds=payload.timeout if payload else 0.0,
        created_at=(ms_to_datetime(payload.created_at) if payload else ms("started_at")) or datetime.now(UTC),
        scheduled_at=ms("scheduled_at"),
        started_at=ms("started_at"),
        finished_at=ms("finished_at"),
        result=parsed("result"),
        error=error,
        progress=Progress.model_validate(progress) if progress else None,
        worker=text("worker"),
        idempotency_key=payload.idempotency_key if payload else None,
        cancel_requested=fields.get("cancel") is not None,
    )


@dataclass(slots=True)
class ClaimedJob:
    """A job handed to a worker by claim. ``raw`` is the stored payload, parsed by the worker."""

    id: str
    queue: str
    token: int
    attempts: int
    raw: bytes

    def payload(self) -> JobPayload:
        return JobPayload.from_json(self.raw)


@dataclass(frozen=True, slots=True)
class Ack:
    """A finished job to acknowledge: ``result`` is JSON text; ``cancelled`` marks a stopped job."""

    id: str
    token: int
    result: str = "null"
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    pending: int
    scheduled: int
    running: int
    dead: int
    oldest_pending_age_seconds: float | None
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def processed_total(self) -> int:
        return self.counters.get("processed", 0)

    @property
    def failed_total(self) -> int:
        return self.counters.get("failed", 0)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat: datetime
    concurrency: int
    queues: list[str]
    jobs: list[str]
    #: The tasks it runs (the built-ins and its ``TASKQ_TASKS``): a job of any other dead-letters
    #: there as ``unknown_task``. Empty for a worker of a version that did not say.
    tasks: list[str]
