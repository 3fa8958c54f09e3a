"""``JobContext``: what a handler gets besides its arguments. The worker implements it; user code
only annotates with it (``def handler(args: MyArgs, ctx: JobContext)``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from taskq.results import Enqueued


class NamedTask(Protocol):
    """A declared task (``taskq.Task``), as far as the context needs to know it."""

    @property
    def name(self) -> str: ...


class JobContext(Protocol):
    """What a handler gets besides its arguments (the worker provides it).

    The same object serves ``async def`` handlers and plain ``def`` ones (thread pool, or an isolated
    child process): ``progress`` and ``save_artifact`` never block on Redis; ``enqueue`` blocks (call
    it from a ``def`` handler) and ``aenqueue`` is its coroutine (call it from an ``async def``)."""

    @property
    def job_id(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def attempt(self) -> int:
        """1 on the first execution; a retry (or a run after a crash) sees a higher number."""
        ...

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger (``taskq.task``) whose JSON lines carry the job id, task, queue and attempt."""
        ...

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0-100 and a message), shown by ``GET /jobs/{id}``. Best effort and never
        blocking, from the event loop or any thread: only the latest value is written, and an outage
        or a lost lease drops it (never raised). A value out of 0-100 raises ``ValueError``."""
        ...

    def enqueue(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Enqueued:
        """Start a follow-up job and wait for it to be accepted (blocking: from a ``def`` handler).

        ``task`` is a ``taskq.Task`` or a name in the worker's registry (``UnknownTask``); ``args``
        its args model or a mapping validated with it (pydantic's ``ValidationError``); ``options``:
        queue, priority, delay_seconds, max_attempts, timeout_seconds (the task's own by default).

        Exactly once per job: keyed by this job's id alone, plus the call's order (the n-th call
        without ``key`` in an attempt) or ``key``; so a retry, or a run after the worker was
        killed, gets the job the first attempt made (``created`` False) and never a second one, and
        making a different request under the same key raises ``IdempotencyConflict``. Keep the
        calls' order deterministic, or name each follow-up with ``key``. The record lives
        ``IDEMPOTENCY_TTL_SECONDS``: an attempt later than that would enqueue again."""
        ...

    async def aenqueue(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Enqueued:
        """``enqueue`` for ``async def`` handlers (the same keys, so the same exactly-once)."""
        ...

    def save_artifact(self, data: bytes, *, content_type: str, suffix: str = "") -> dict[str, str]:
        """Store a file as this job's artifact (served by ``GET /jobs/{id}/artifact``). Put the mapping
        it returns into the handler's result: ``return {"width": w, **ctx.save_artifact(png, ...)}``."""
        ...


__all__ = ["JobContext", "NamedTask"]
