"""What a handler gets besides its arguments: the worker's ``taskq.JobContext``.

Who the job is (id, queue, task, attempt), a logger bound to it, progress, follow-up jobs
(``worker.follow_ups``: exactly once per job), artifacts; and, for the built-in handlers, the
worker's settings, client and shared resources. One object serves the three ways a handler runs:
``async def`` on the loop, ``def`` in the thread pool, and (through ``worker.child``) isolated.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from taskq import Enqueued, Taskq, TaskRegistry
from taskq.context import NamedTask
from taskq.results import EnqueueRequest
from worker.artifacts import save_artifact
from worker.follow_ups import follow_up, idempotency_key, submit
from worker.joblog import JobLogger, job_logger
from worker.progress import ProgressWriter
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    import taskq.context

#: Round trips a follow-up takes (claim, queue registration, enqueue): a thread waits for at most
#: this many socket timeouts, plus a margin, before it gives up (the enqueue may still land; a retry
#: of the job gets it back).
ENQUEUE_ROUND_TRIPS = 3
#: Guards the parts of a context made on first use (rare: once per job at most).
_FIRST_USE = threading.Lock()


class JobContext:
    """One attempt of one job, as its handler sees it (``taskq.JobContext`` and the worker's extras).

    Handlers are told the job id and the attempt so they can be idempotent (delivery is at least
    once)."""

    __slots__ = ("_calls", "_log", "_loop_thread", "_progress", "attempt", "job_id", "loop", "queue",
                 "registry", "resources", "settings", "task", "taskq", "token")  # fmt: skip

    def __init__(
        self,
        *,
        job_id: str,
        queue: str,
        task: str,
        attempt: int,
        token: int,
        settings: WorkerSettings,
        taskq: Taskq,
        loop: asyncio.AbstractEventLoop,
        registry: TaskRegistry | None = None,
        resources: dict[str, object] | None = None,
    ) -> None:
        self.job_id = job_id
        self.queue = queue
        self.task = task
        self.attempt = attempt
        self.token = token
        self.settings = settings
        self.taskq = taskq
        self.loop = loop
        #: What ``enqueue`` looks names up in (None: the settings' own, ``settings.tasks()``).
        self.registry = registry
        #: Per-process resources a handler may reuse (e.g. the webhook HTTP client), by name.
        self.resources: dict[str, object] = {} if resources is None else resources
        # Built on the loop's thread (the job runner). The rest is made on first use: most handlers
        # never report progress, log or enqueue, and every job builds a context (the hot path).
        self._loop_thread = threading.get_ident()
        self._progress: ProgressWriter | None = None
        self._log: JobLogger | None = None
        self._calls: Iterator[int] | None = None  # numbers the unkeyed enqueues of this attempt

    @property
    def log(self) -> JobLogger:
        """See ``taskq.JobContext.log``."""
        if self._log is None:  # built on first use: most handlers never log
            self._log = job_logger(self.job_id, self.task, self.queue, self.attempt)
        return self._log

    def progress(self, percent: float, message: str | None = None) -> None:
        """See ``taskq.JobContext.progress``; written on the worker's loop, a drop logged at debug."""
        writer = self._progress
        if writer is None:
            with _FIRST_USE:  # a thread handler may report from several threads at once
                if self._progress is None:
                    self._progress = ProgressWriter(
                        self.taskq, self.loop, self._loop_thread, self.queue, self.job_id, self.token
                    )
                writer = self._progress
        writer.report(percent, message)

    async def flush_progress(self) -> None:
        """Wait (bounded) until the progress already reported is written (before the outcome)."""
        if self._progress is not None and self._progress.writing:
            await self._progress.flush(self.settings.redis_socket_timeout)

    def enqueue(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Enqueued:
        """See ``taskq.JobContext.enqueue``; called on the event loop it raises ``RuntimeError``."""
        if self._on_loop():
            raise RuntimeError(
                "ctx.enqueue blocks and was called on the event loop: use `await ctx.aenqueue(...)` "
                "in an async def handler"
            )
        req = self._request(task, args, key, options)
        future = asyncio.run_coroutine_threadsafe(submit(self.taskq, req, self.job_id), self.loop)
        return future.result(timeout=ENQUEUE_ROUND_TRIPS * self.settings.redis_socket_timeout + 5)

    async def aenqueue(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Enqueued:
        """See ``taskq.JobContext.aenqueue``."""
        return await submit(self.taskq, self._request(task, args, key, options), self.job_id)

    def _request(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None,
        key: str | None,
        options: Mapping[str, Any],
    ) -> EnqueueRequest:
        if key is None:
            if self._calls is None:
                with _FIRST_USE:
                    if self._calls is None:
                        self._calls = itertools.count(1)
            call = next(self._calls)  # atomic: a thread handler may enqueue from several threads
        else:
            call = 0
        registry = self.registry if self.registry is not None else self.settings.tasks()
        return follow_up(registry, task, args, idempotency_key(self.job_id, call, key), options)

    def _on_loop(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def save_artifact(self, data: bytes, *, content_type: str, suffix: str = "") -> dict[str, str]:
        """See ``taskq.JobContext.save_artifact``; written under ``REPORTS_DIR``."""
        return save_artifact(self.settings.reports_dir, self.job_id, data, content_type, suffix)


if TYPE_CHECKING:  # mypy checks here that the worker's context is what handlers are promised

    def _implements(ctx: JobContext) -> taskq.context.JobContext:
        return ctx
