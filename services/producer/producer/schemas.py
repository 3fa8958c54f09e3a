"""Request and response bodies of the HTTP API (the job itself is core's ``Job`` model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from taskq import Job
from taskq.constants import DEFAULT_PRIORITY, MAX_PRIORITY
from taskq.keys import QUEUE_NAME_RE
from taskq.tasks import TASK_NAME_PATTERN

#: A job id is a canonical UUID (core makes UUIDv7s). Checked before it goes anywhere near a key.
JOB_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:=+/\-]{1,255}$"
MAX_DELAY_SECONDS = 365 * 86_400
#: The error type of a run_at past that bound (a rule JSON Schema cannot state).
RUN_AT_TOO_FAR = "run_at_too_far"
MAX_BATCH = 1_000


def _iso_text(value: object) -> object:
    """run_at is JSON text; pydantic would also read a number as a Unix time, which the schema
    (a date-time string) does not allow."""
    if value is not None and not isinstance(value, str):
        raise ValueError("run_at must be an ISO 8601 date-time string")
    return value


def _integral(value: object) -> object:
    """JSON Schema counts 3.0 as an integer; strict pydantic would not (it still refuses "3", true)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]


class _Strict(BaseModel):
    # strict: JSON types are taken as they are ("5" is not a priority, true is not an attempt count).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=100_000, strict=True)


class JobRequest(_Strict):
    """A job to enqueue. ``args`` are validated against the task's schema (see ``GET /tasks``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task": "send_email",
                    "args": {"recipient_email": "ada@example.com", "subject": "Hi", "body": "Hello"},
                    "priority": 7,
                }
            ]
        }
    )

    task: str = Field(pattern=TASK_NAME_PATTERN, description="A registered task name")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments; shape given by the task")
    queue: str | None = Field(
        default=None, pattern=QUEUE_NAME_RE.pattern, description="Queue; the task's own queue when omitted"
    )
    # None until the task is known: an omitted option takes the task's own value (``submit.to_enqueue``).
    priority: Annotated[int, Field(ge=0, le=MAX_PRIORITY), BeforeValidator(_integral)] | None = Field(
        default=None,
        description=f"0-{MAX_PRIORITY}, {MAX_PRIORITY} most urgent; the task's priority when omitted "
        f"({DEFAULT_PRIORITY} unless the task declares another: GET /tasks)",
    )
    delay_seconds: float | None = Field(
        default=None, ge=0, le=MAX_DELAY_SECONDS, description="Run no earlier than this many seconds from now"
    )
    run_at: Annotated[AwareDatetime, BeforeValidator(_iso_text)] | None = Field(
        default=None,
        strict=False,
        description="Run no earlier than this time (ISO 8601 with a timezone), at most 365 days ahead",
    )
    max_attempts: Annotated[int, Field(ge=1, le=100), BeforeValidator(_integral)] | None = Field(
        default=None,
        description="Executions before dead-lettering; the task's max_attempts when omitted, else the "
        "deployment's DEFAULT_MAX_ATTEMPTS",
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=7 * 86_400,
        description="Hard limit of one execution; the task's timeout_seconds when omitted, else the "
        "deployment's DEFAULT_TIMEOUT_SECONDS",
    )

    @field_validator("run_at")
    @classmethod
    def _within_a_year(cls, value: datetime | None) -> datetime | None:
        # The same bound as delay_seconds: a far date is a typo more often than a plan, and it would
        # hold the job (and its idempotency key) for as long.
        if value is not None and value > datetime.now(UTC) + timedelta(seconds=MAX_DELAY_SECONDS):
            # Its own error type: JSON Schema cannot say "within a year of now", so the fuzzer's
            # hook (tests/producer/fuzz_hooks.py) recognises this documented refusal by it.
            raise PydanticCustomError(RUN_AT_TOO_FAR, "run_at must be at most 365 days from now")
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> JobRequest:
        if self.delay_seconds is not None and self.run_at is not None:
            raise ValueError("give delay_seconds or run_at, not both")
        return self


class BatchRequest(_Strict):
    jobs: list[JobRequest] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} jobs of one queue: all are enqueued or none",
    )


class BatchAccepted(BaseModel):
    jobs: list[Job]


class EmailAccepted(BaseModel):
    status: Literal["queued"] = "queued"
    message: str = "Email task added to queue"
    job_id: str


class CancelResult(BaseModel):
    job: Job
    cancelled: bool = Field(description="True: cancelled now. False: running, cancellation requested")


class QueueView(BaseModel):
    queue: str
    declared: bool = Field(
        description="False: not in QUEUES: jobs are refused, no worker serves it (declare it to drain it)"
    )
    workers: int = Field(description="Live workers serving it: 0 with jobs pending means nobody runs them")
    pending: int
    scheduled: int
    running: int
    dead: int
    processed_total: int
    failed_total: int
    oldest_pending_age_seconds: float | None = Field(description="Age of the oldest pending job")
    counters: dict[str, int] = Field(description="Every counter of the queue (enqueued, succeeded, ...)")


class DeadLetterPage(BaseModel):
    queue: str
    items: list[Job]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end")


class RetryBackoff(BaseModel):
    base: float = Field(description="Seconds before the first retry; doubled at each next one")
    max: float = Field(description="The longest wait between two attempts")


class TaskView(BaseModel):
    """A task and the options its jobs get when a request omits them (``POST /jobs`` may override
    queue, priority, max_attempts and timeout_seconds per job)."""

    name: str
    description: str
    args_schema: dict[str, Any] = Field(description="JSON Schema of the task's args")
    queue: str = Field(description="The queue its jobs go to")
    priority: int = Field(description=f"Its jobs' priority (0-{MAX_PRIORITY}, {MAX_PRIORITY} most urgent)")
    max_attempts: int | None = Field(
        description="Executions before dead-lettering; null: the deployment's DEFAULT_MAX_ATTEMPTS"
    )
    timeout_seconds: float | None = Field(
        description="Hard limit of one execution; null: the deployment's DEFAULT_TIMEOUT_SECONDS"
    )
    retry_backoff_seconds: RetryBackoff | None = Field(
        description="Waits between attempts; null: the deployment's RETRY_BACKOFF_BASE/MAX_SECONDS"
    )
    isolated: bool = Field(description="Runs in a child process killed at its timeout")


class Health(BaseModel):
    status: Literal["ok", "ready"]
    warnings: list[str] = Field(default_factory=list)
