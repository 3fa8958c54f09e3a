"""One job from claim to outcome: decode (or dead-letter unrun), execute, then report the outcome.

The runner holds no Redis write and no worker state: it reports each outcome through ``Outcomes``, the
narrow interface the worker (``worker.manager``) implements, which batches acks, records failures,
frees slots and bounds a thread that will not stop.

Outcomes logged (one JSON line per job, ``outcome`` field): succeeded, retrying, failed (dead-lettered),
cancelled, timeout, refused (bad message), lost (lease lost mid-job), handed_back (graceful stop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Any, Protocol

from taskq import Ack, DeadReason, JobError, NonRetryableError, Taskq, TaskRegistry
from taskq.models import dumps
from worker.context import JobContext
from worker.deadlines import Deadlines
from worker.decode import Refused, decode
from worker.execution import ChildFailed, JobTimeout, execute, preload
from worker.handlers import Handler, handlers_for
from worker.settings import WorkerSettings
from worker.slots import Held, StopReason

log = logging.getLogger("taskq.worker.job")

MAX_MESSAGE = 1000


class Outcomes(Protocol):
    """Where a job's outcome goes (implemented by the worker, which owns the slots and the writes)."""

    def ack(self, h: Held, ack: Ack) -> None:
        """Record it succeeded (or cancelled) in the next ack batch; frees the slot once recorded."""

    async def fail(self, h: Held, error: JobError, *, retryable: bool, reason: DeadReason) -> str:
        """Record a failure (retry or dead-letter) and free the slot; returns the job's new status."""

    def forget(self, h: Held) -> None:
        """Free the slot without recording anything: the job is no longer ours."""

    def thread_stopped(self, h: Held) -> None:
        """A stop reached a job whose thread cannot be interrupted: stop cancelling it, bound the wait."""


class JobRunner:
    def __init__(
        self,
        outcomes: Outcomes,
        registry: TaskRegistry,
        settings: WorkerSettings,
        taskq: Taskq,
        pool: Executor,
        deadlines: Deadlines[Held],
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.outcomes, self.registry, self.settings, self.taskq = outcomes, registry, settings, taskq
        self.pool, self.deadlines = pool, deadlines
        # ``python -m worker`` resolved them before touching Redis (to refuse a bad module): use those;
        # a Worker built without them (in-process, as tests do) resolves them here, still once.
        self.handlers = handlers if handlers is not None else handlers_for(registry)
        preload(self.handlers.values())  # before any child starts: the fork server imports them once
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
        out = self.outcomes
        try:
            runnable = decode(h.job, self.registry, self.handlers, self.settings.max_payload_bytes)
        except Refused as exc:
            error = JobError(type=exc.type_name, message=str(exc)[:MAX_MESSAGE])
            await out.fail(h, error, retryable=False, reason=exc.reason)
            self._log(h, "refused", "", logging.WARNING, reason=exc.reason.value, error=error.message)
            return
        task = runnable.payload.task
        ctx = JobContext(
            job_id=h.job.id, queue=h.job.queue, task=task, attempt=h.job.attempts, token=h.job.token,
            settings=self.settings, taskq=self.taskq, registry=self.registry,
            loop=asyncio.get_running_loop(), resources=self.resources,
        )  # fmt: skip
        timeout = runnable.payload.timeout
        deadline = None if runnable.handler.mode == "process" else self.deadlines.add(h, timeout)
        try:
            value = await execute(
                runnable.handler, task, runnable.args, ctx, timeout, self.pool, lambda: out.thread_stopped(h)
            )
            text = "null" if value is None else dumps(value)
        except asyncio.CancelledError:
            h.stop_seen = True
            if h.stop_reason is StopReason.TIMEOUT:
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
            status = await out.fail(h, error, retryable=exc.retryable, reason=reason)
            self._log(h, _failed(status), task, logging.WARNING, status=status, traceback=exc.child_traceback)
            return
        except Exception as exc:
            retryable = not isinstance(exc, NonRetryableError)
            reason = DeadReason.ERROR if retryable else DeadReason.NON_RETRYABLE
            error = JobError(type=type(exc).__name__, message=str(exc)[:MAX_MESSAGE])
            status = await out.fail(h, error, retryable=retryable, reason=reason)
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
                self.deadlines.remove(h, deadline)
        out.ack(h, Ack(h.job.id, h.job.token, text))
        if h.stop_reason is None:
            self._log(h, "succeeded", task)
        else:  # a thread stopped too late to interrupt: it finished, and that is what is recorded
            self._log(h, "succeeded", task, logging.WARNING, stopped_too_late=h.stop_reason)

    async def _timed_out(self, h: Held, task: str, message: str) -> None:
        error = JobError(type="JobTimeout", message=message)
        status = await self.outcomes.fail(h, error, retryable=True, reason=DeadReason.TIMEOUT)
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
        if h.stop_reason is StopReason.CANCEL:
            self.outcomes.ack(h, Ack(h.job.id, h.job.token, cancelled=True))
            self._log(h, "cancelled", task)
        elif h.stop_reason is StopReason.LOST:
            self.outcomes.forget(h)
            self._log(h, "lost", task, logging.WARNING)
        else:
            h.give_back = True  # finish_in_hand releases it: its code has stopped
            self._log(h, "handed_back", task, logging.WARNING)
        return True


def _failed(status: str) -> str:
    return {"scheduled": "retrying", "failed": "failed"}.get(status, status)
