"""Maintenance and control: reap, promote, cancel, stats, and the dead-letter commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskq.commands.base import Call, QueueCommand, text
from taskq.errors import InvalidTransition, JobNotFound, ScriptCode
from taskq.models import JobError, JobStatus, QueueStats
from taskq.results import ReapResult

#: What a reaped job's record says happened to its run.
WORKER_LOST = JobError(type="WorkerLost", message="the worker stopped heartbeating (lease expired)")
_WORKER_LOST_JSON = WORKER_LOST.model_dump_json(exclude_none=True)


class Reap(QueueCommand):
    SCRIPT = "reap"
    KEYS = ("active", "pending", "dead", "stats", "marker", "maintenance_lock", "event_stream")

    def __call__(self, limit: int, lock_ms: int, owner: str) -> Call[ReapResult]:
        qk, config = self.qk, self.config
        args = (
            qk.job_prefix, limit, config.dead_ttl_ms, lock_ms, owner, qk.events, _WORKER_LOST_JSON,
            config.result_ttl_ms, config.events_max_len,
        )  # fmt: skip
        return self.call(self._fixed, args, _reaped)


def _reaped(reply: Sequence[Any]) -> ReapResult:
    ran, requeued, dead = reply
    return ReapResult(bool(ran), int(requeued), int(dead))


class Promote(QueueCommand):
    SCRIPT = "promote"
    KEYS = ("scheduled", "pending", "marker", "event_stream")

    def __call__(self, limit: int) -> Call[int]:
        return self.call(self._fixed, (self.qk.job_prefix, limit, self.config.events_max_len), _first_int)


def _first_int(reply: Sequence[Any]) -> int:
    return int(reply[0])


class Cancel(QueueCommand):
    SCRIPT = "cancel"
    KEYS = ("job", "pending", "scheduled", "stats", "event_stream")

    def __call__(self, job_id: str) -> Call[JobStatus]:
        """The reply: CANCELLED (it was waiting) or RUNNING (flagged for its worker). Raises
        ``JobNotFound``, or ``InvalidTransition`` when the job already finished."""
        qk = self.qk

        def parse(reply: Sequence[Any]) -> JobStatus:
            code = int(reply[0])
            if code == ScriptCode.NOT_FOUND:
                raise JobNotFound(job_id)
            if code == ScriptCode.WRONG_STATE:
                raise InvalidTransition(job_id, text(reply[1]), "cancel")
            return JobStatus.CANCELLED if code == ScriptCode.OK else JobStatus.RUNNING

        args = (job_id, self.config.result_ttl_ms, qk.events, self.config.events_max_len)
        return self.call(self.keys(qk.job(job_id)), args, parse)


class Stats(QueueCommand):
    SCRIPT = "stats"
    KEYS = ("pending", "scheduled", "active", "dead", "stats")

    def __call__(self) -> Call[QueueStats]:
        return self.call(self._fixed, (), self.parse)

    def parse(self, flat: Sequence[Any]) -> QueueStats:
        pending, scheduled, running, dead, now, oldest = (int(v) for v in flat[:6])
        counters = {text(flat[i]): int(flat[i + 1]) for i in range(6, len(flat), 2)}
        age = None if oldest < 0 else max(0.0, (now - oldest) / 1000)
        return QueueStats(self.qk.queue, pending, scheduled, running, dead, age, counters)


class DeadRetry(QueueCommand):
    SCRIPT = "dead_retry"
    KEYS = ("dead", "pending", "marker", "job", "stats", "event_stream")

    def __call__(self, job_id: str) -> Call[None]:
        """Raises ``JobNotFound`` when the job is not dead-lettered (or its hash expired)."""
        args = (job_id, self.config.events_max_len)
        return self.call(self.keys(self.qk.job(job_id)), args, _found(job_id))


class DeadPurge(QueueCommand):
    SCRIPT = "dead_purge"
    KEYS = ("dead", "job", "event_stream")

    def __call__(self, job_id: str) -> Call[None]:
        args = (job_id, self.config.events_max_len)
        return self.call(self.keys(self.qk.job(job_id)), args, _found(job_id))


def _found(job_id: str) -> Any:
    def parse(code: Any) -> None:
        if int(code) != ScriptCode.OK:
            raise JobNotFound(job_id)

    return parse


class Pause(QueueCommand):
    SCRIPT = "pause"
    KEYS = ("paused", "marker")

    def __call__(self, paused: bool) -> Call[bool]:
        """Pause (True) or resume (False); the reply: whether the state changed."""
        return self.call(self._fixed, ("1" if paused else "0",), _changed)


def _changed(reply: Any) -> bool:
    return int(reply) == 1


class Purge(QueueCommand):
    SCRIPT = "purge"
    KEYS = ("pending", "stats", "event_stream")

    def __call__(self, limit: int) -> Call[tuple[int, int]]:
        """Delete up to ``limit`` pending jobs; the reply: (purged, pending left)."""
        qk, max_len = self.qk, self.config.events_max_len
        return self.call(self._fixed, (qk.job_prefix, qk.idempotency(""), qk.events, limit, max_len), _pair)


def _pair(reply: Sequence[Any]) -> tuple[int, int]:
    return int(reply[0]), int(reply[1])


class RemoveQueue(QueueCommand):
    SCRIPT = "remove_queue"
    KEYS = (
        "pending", "scheduled", "active", "dead", "stats", "token", "marker", "paused", "maintenance_lock",
    )  # fmt: skip

    def __call__(self) -> Call[tuple[int, int, int, int] | None]:
        """Delete the queue's keys if it holds no job; the reply: None when removed, else what it
        holds (pending, scheduled, running, dead) and nothing was deleted."""
        return self.call(self._fixed, (), _held)


def _held(reply: Sequence[Any]) -> tuple[int, int, int, int] | None:
    if int(reply[0]) == ScriptCode.OK:
        return None
    pending, scheduled, running, dead = (int(v) for v in reply[1:5])
    return pending, scheduled, running, dead
