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
        """A logger whose lines carry the job id, task, queue and attempt."""
        ...

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0-100 and a message), shown by ``GET /jobs/{id}``. Best effort and never
        blocking: only the latest value is written, and an outage drops it."""
        ...

    def enqueue(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Enqueued:
        """Start a follow-up job (blocking). Exactly once per job: the n-th call of an attempt is
        keyed by this job's id and n (or by ``key``), so a retried attempt gets the same job back."""
        ...

    async def aenqueue(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Enqueued:
        """``enqueue`` for ``async def`` handlers."""
        ...

    def save_artifact(self, data: bytes, *, content_type: str, suffix: str = "") -> dict[str, str]:
        """Store a file as this job's artifact (served by ``GET /jobs/{id}/artifact``). Put the mapping
        it returns into the handler's result: ``return {"width": w, **ctx.save_artifact(png, ...)}``."""
        ...


__all__ = ["JobContext", "NamedTask"]
