"""A job's progress writes: requested from any thread, written on the worker's loop, coalesced.

``ctx.progress`` must never block a handler (a thread handler calling it in a tight loop must not
wait on Redis, an async one must not await), so it only records the value and makes sure one writer
task runs on the loop; that task writes the latest pending value until none is left. A burst of a
thousand calls during one round trip costs two writes, not a thousand. Best effort: an outage, a
full Redis or a lease that moved on is logged at debug, never raised into the handler.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from taskq import Taskq
from worker.connection import REDIS_ERRORS

log = logging.getLogger("taskq.worker")


def check_progress(percent: float, message: str | None) -> None:
    """Raise at the handler's call (not later, on the loop) for a value the job cannot store."""
    if not 0 <= percent <= 100:  # also refuses NaN
        raise ValueError(f"progress must be from 0 to 100, got {percent!r}")
    if message is not None and not isinstance(message, str):
        raise TypeError(f"a progress message is a str, got {type(message).__name__}")


class ProgressWriter:
    """The progress of one attempt of one job (its lease token guards every write)."""

    __slots__ = ("_job_id", "_lock", "_loop", "_loop_thread", "_pending", "_queue", "_task", "_taskq",
                 "_token", "_writing")  # fmt: skip

    def __init__(
        self,
        taskq: Taskq,
        loop: asyncio.AbstractEventLoop,
        loop_thread: int,
        queue: str,
        job_id: str,
        token: int,
    ) -> None:
        self._taskq, self._loop, self._queue, self._job_id, self._token = taskq, loop, queue, job_id, token
        #: The loop's thread: a call from it schedules the writer directly, others through the loop.
        self._loop_thread = loop_thread
        self._lock = threading.Lock()
        self._pending: tuple[float, str | None] | None = None
        self._writing = False
        self._task: asyncio.Task[None] | None = None

    def report(self, percent: float, message: str | None = None) -> None:
        check_progress(percent, message)
        with self._lock:
            self._pending = (percent, message)
            if self._writing:
                return  # the running writer picks the new value up
            self._writing = True
        if threading.get_ident() == self._loop_thread:
            self._start()
            return
        try:
            self._loop.call_soon_threadsafe(self._start)
        except RuntimeError:  # the loop is closed: the worker is gone, and so is the job's lease
            with self._lock:
                self._writing, self._pending = False, None

    def _start(self) -> None:
        self._task = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    value, self._pending = self._pending, None
                    if value is None:
                        self._writing = False
                        return
                await self._write(*value)
        except asyncio.CancelledError:
            with self._lock:
                self._writing = False  # cancelled (the loop is stopping): a later call starts anew
            raise

    async def _write(self, percent: float, message: str | None) -> None:
        fields = {"job_id": self._job_id, "queue": self._queue}
        try:
            stored = await self._taskq.set_progress(self._queue, self._job_id, self._token, percent, message)
        except REDIS_ERRORS as exc:  # unreachable, or full: progress is refused at maxmemory
            log.debug("progress not stored", extra={**fields, "error": str(exc)})
            return
        except Exception as exc:  # best effort: whatever else went wrong is not the handler's failure
            log.debug("progress not stored", exc_info=exc, extra=fields)
            return
        if not stored:
            log.debug("progress refused: the lease moved on", extra=fields)

    @property
    def writing(self) -> bool:
        return self._writing

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) for the writes already requested: the job's last progress lands before its
        outcome, so ``GET /jobs/{id}`` never shows a finished job at 90 % because of a race."""
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait([task], timeout=timeout)
