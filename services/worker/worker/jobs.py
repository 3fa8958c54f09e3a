"""One job from claim to outcome: decode (or dead-letter unrun), execute, then ack or record the failure.

Outcomes logged (one JSON line per job, ``outcome`` field): succeeded, retrying, failed (dead-lettered),
cancelled, timeout, refused (bad message), lost (lease lost mid-job), handed_back (graceful stop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from taskq import Ack, DeadReason, JobError, NonRetryableError, RedisUnavailable, TaskRegistry
from worker.connection import REDIS_ERRORS, Backoff
from worker.context import JobContext
from worker.decode import Refused, decode
from worker.execution import ChildFailed, JobTimeout, execute
from worker.handlers import Mode, handlers_for
from worker.shutdown import thread_stopped

if TYPE_CHECKING:
    from worker.runner import Held, Worker

log = logging.getLogger("taskq.worker.job")

MAX_MESSAGE = 1000


class JobRunner:
    def __init__(self, worker: Worker, registry: TaskRegistry) -> None:
        self.worker = worker
        self.registry = registry
        self.handlers = handlers_for(registry)
        self.resources: dict[str, object] = {}

    def _log(self, h: Held, outcome: str, task: str, level: int = logging.INFO, **extra: Any) -> None:
        if log.isEnabledFor(level):
            log.log(
                level,
                "job " + outcome,
                extra={"job_id": h.job.id, "task": task, "attempt": h.job.attempts, "queue": h.job.queue,
                       "duration_ms": round((time.monotonic() - h.started) * 1000, 2), "outcome": outcome,
                       **extra},
            )  # fmt: skip

    async def run(self, h: Held) -> None:
        w = self.worker
        try:
            runnable = decode(h.job, self.registry, self.handlers, w.settings.max_payload_bytes)
        except Refused as exc:
            error = JobError(type=exc.type_name, message=str(exc)[:MAX_MESSAGE])
            await record_failure(w, h, error, retryable=False, reason=exc.reason)
            self._log(h, "refused", "", logging.WARNING, reason=exc.reason.value, error=error.message)
            return
        task = runnable.payload.task
        ctx = JobContext(
            job_id=h.job.id, queue=h.job.queue, task=task, attempt=h.job.attempts, token=h.job.token,
            settings=w.settings, taskq=w.taskq, loop=asyncio.get_running_loop(), resources=self.resources,
        )  # fmt: skip
        timeout = runnable.payload.timeout
        deadline = None if runnable.handler.mode is Mode.PROCESS else w.deadlines.add(h, timeout)
        try:
            value = await execute(
                runnable.handler, task, runnable.args, ctx, timeout, w.pool, lambda: thread_stopped(w, h)
            )
            text = "null" if value is None else w.result_text(value)
        except asyncio.CancelledError:
            h.stop_seen = True
            if h.stop_reason == "timeout":
                self._uncancel()
                await self._timed_out(h, task, f"exceeded its timeout of {timeout:g}s")
                return
            if not self._stopped_by_us(h, task):
                raise
            return
        except JobTimeout as exc:
            await self._timed_out(h, task, str(exc))
            return
        except ChildFailed as exc:
            reason = DeadReason.ERROR if exc.retryable else DeadReason.NON_RETRYABLE
            error = JobError(type=exc.type_name, message=str(exc)[:MAX_MESSAGE])
            status = await record_failure(w, h, error, retryable=exc.retryable, reason=reason)
            self._log(h, _failed(status), task, logging.WARNING, status=status, traceback=exc.child_traceback)
            return
        except Exception as exc:
            retryable = not isinstance(exc, NonRetryableError)
            reason = DeadReason.ERROR if retryable else DeadReason.NON_RETRYABLE
            error = JobError(type=type(exc).__name__, message=str(exc)[:MAX_MESSAGE])
            status = await record_failure(w, h, error, retryable=retryable, reason=reason)
            if log.isEnabledFor(logging.WARNING):
                log.warning(
                    "job " + _failed(status),
                    exc_info=exc,
                    extra={"job_id": h.job.id, "task": task, "attempt": h.job.attempts, "queue": h.job.queue,
                           "duration_ms": round((time.monotonic() - h.started) * 1000, 2),
                           "outcome": _failed(status), "status": status},
                )  # fmt: skip
            return
        finally:
            if deadline is not None:
                w.deadlines.remove(h, deadline)
        w.ack(h, Ack(h.job.id, h.job.token, text))
        if h.stop_reason is None:
            self._log(h, "succeeded", task)
        else:  # a thread stopped too late to interrupt: it finished, and that is what is recorded
            self._log(h, "succeeded", task, logging.WARNING, stopped_too_late=h.stop_reason)

    async def _timed_out(self, h: Held, task: str, message: str) -> None:
        error = JobError(type="JobTimeout", message=message)
        status = await record_failure(self.worker, h, error, retryable=True, reason=DeadReason.TIMEOUT)
        self._log(h, "timeout", task, logging.WARNING, status=status)

    @staticmethod
    def _uncancel() -> None:
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()

    def _stopped_by_us(self, h: Held, task: str) -> bool:
        """The worker cancelled this job itself (cancel request, lease lost, grace over): settle it."""
        if h.stop_reason is None:
            return False
        self._uncancel()
        if h.stop_reason == "cancel":
            self.worker.ack(h, Ack(h.job.id, h.job.token, cancelled=True))
            self._log(h, "cancelled", task)
        elif h.stop_reason == "lost":
            self.worker.forget(h)
            self._log(h, "lost", task, logging.WARNING)
        else:
            h.give_back = True  # finish_in_hand releases it: its code has stopped
            self._log(h, "handed_back", task, logging.WARNING)
        return True


async def record_failure(w: Worker, h: Held, error: JobError, *, retryable: bool, reason: DeadReason) -> str:
    """Record a failed execution; retried through an outage while the lease holds. Returns the status."""
    backoff = Backoff()
    while True:
        try:
            status = await w.taskq.fail(
                h.job.queue, h.job.id, h.job.token, error,
                retryable=retryable, reason=reason.value, attempts=h.job.attempts,
            )  # fmt: skip
            w.state.succeeded(room=False)  # fail runs at maxmemory too
            break
        except REDIS_ERRORS as exc:
            w.state.failed("fail", exc)
            if isinstance(exc, RedisUnavailable):
                await w.reset_connections()
            if not w.lease_alive(h) or w.hard_stop.is_set():
                log.warning("failure not recorded: the lease expired", extra={"job_id": h.job.id})
                w.forget(h)
                return "dropped"
            await w.pause(backoff.next_delay())
    w.forget(h)
    return "stale" if status is None else status.value


def _failed(status: str) -> str:
    return {"scheduled": "retrying", "failed": "failed"}.get(status, status)
