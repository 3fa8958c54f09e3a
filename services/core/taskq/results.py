"""What callers hand to taskq and what they get back: requests and results of the queue operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from taskq.constants import DEFAULT_PRIORITY
from taskq.models import ClaimedJob, JobPayload


@dataclass(frozen=True, slots=True)
class EnqueueRequest:
    task: str
    args: Mapping[str, Any]
    queue: str = "default"
    priority: int = DEFAULT_PRIORITY
    delay_ms: int = 0
    max_attempts: int | None = None
    timeout: float | None = None
    idempotency_key: str | None = None
    #: Identifies the request behind an idempotency key; a repeat with another fingerprint conflicts.
    #: None: any repeat of the key returns the first job.
    fingerprint: str | None = None
    #: The acceptance time (ms) to record, so a caller can answer with the very timestamps stored.
    created_at_ms: int | None = None


class EnqueueOptions(TypedDict, total=False):
    """``enqueue``'s keyword arguments: the fields of ``EnqueueRequest`` after the task and args."""

    queue: str
    priority: int
    delay_ms: int
    max_attempts: int | None
    timeout: float | None
    idempotency_key: str | None
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class EncodedJob:
    """A request with its payload built and sized (``Taskq.encode``). A batch made of these cannot be
    refused for one job's size: each was refused, alone, before it joined."""

    req: EnqueueRequest
    payload: JobPayload
    text: str


@dataclass(frozen=True, slots=True)
class Enqueued:
    id: str
    created: bool  # False: an idempotent repeat returned the job the key already named


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    jobs: list[ClaimedJob]
    #: ms until the next scheduled job of the queue is due, None when nothing is scheduled.
    next_due_ms: int | None
    #: The claim left nothing ready to claim (set by ``Waiter.wait_and_claim``): the worker may block
    #: on the marker again without claiming first, since any job enqueued since has set the marker.
    drained: bool = False


@dataclass(frozen=True, slots=True)
class ReapResult:
    ran: bool
    requeued: int
    dead: int


@dataclass(frozen=True, slots=True)
class DeadPage:
    job_ids: list[str]
    next_cursor: str | None
