"""What a handler gets besides its arguments: who the job is, a way to report progress, the settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from taskq import Taskq
from worker.artifacts import save_artifact
from worker.connection import REDIS_ERRORS
from worker.settings import WorkerSettings

log = logging.getLogger("taskq.worker")


@dataclass(slots=True)
class JobContext:
    """Handlers are told the job id and the attempt number so they can be idempotent (at-least-once)."""

    job_id: str
    queue: str
    task: str
    attempt: int
    token: int
    settings: WorkerSettings
    taskq: Taskq
    loop: asyncio.AbstractEventLoop
    #: Extra per-process resources a handler may reuse (e.g. the webhook HTTP client), by name.
    resources: dict[str, object] = field(default_factory=dict)
    on_progress: Callable[[float, str | None], Awaitable[None]] | None = None

    async def progress(self, percent: float, message: str | None = None) -> None:
        """Store progress (0-100 and a message), shown by ``GET /jobs/{id}``. Best effort: an outage or a
        lost lease is logged, never raised into the handler."""
        try:
            stored = await self.taskq.set_progress(self.queue, self.job_id, self.token, percent, message)
        except REDIS_ERRORS as exc:  # unreachable, or full: progress is refused at maxmemory
            log.debug("progress not stored", extra={"job_id": self.job_id, "error": str(exc)})
            return
        if not stored:
            log.debug("progress refused: the lease moved on", extra={"job_id": self.job_id})

    def save_artifact(self, data: bytes, *, content_type: str, suffix: str = "") -> dict[str, str]:
        """Store ``data`` as this job's artifact; put the mapping returned into the result."""
        return save_artifact(self.settings.reports_dir, self.job_id, data, content_type, suffix)

    def progress_threadsafe(self, percent: float, message: str | None = None) -> None:
        """``progress`` for a handler running in a thread: waits for the write (bounded)."""
        future = asyncio.run_coroutine_threadsafe(self.progress(percent, message), self.loop)
        future.result(timeout=self.settings.redis_socket_timeout + 1)


@dataclass(frozen=True, slots=True)
class ChildContext:
    """The context an isolated handler gets in its child process (picklable; no connections)."""

    job_id: str
    queue: str
    task: str
    attempt: int
    #: Where artifacts go (``REPORTS_DIR``).
    artifacts_dir: Path

    def save_artifact(self, data: bytes, *, content_type: str, suffix: str = "") -> dict[str, str]:
        """Store ``data`` as this job's artifact; put the mapping returned into the result."""
        return save_artifact(self.artifacts_dir, self.job_id, data, content_type, suffix)
