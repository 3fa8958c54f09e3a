"""An isolated handler's side of its job: the child process, and the context it gets there.

The child has no connection of its own. Its context has the same surface as the worker's
(``taskq.JobContext``): ``progress`` and ``enqueue`` are requests sent over the job's pipe to the
parent (``worker.execution``), which performs them with the job's own context (so the same
coalescing, the same exactly-once keys); ``enqueue`` waits for the reply, and an error there is
raised here as ``ParentError`` carrying the original's type name and message. ``log`` writes JSON
lines to stderr with the job fields; ``save_artifact`` writes the file directly.

Messages, child to parent: ``("progress", percent, message)``, ``("enqueue", task, args, key,
options)``, then exactly one of ``("done", value)`` or ``("failed", type, message, retryable, tb)``.
Parent to child (only after an enqueue): ``("enqueued", id, created)`` or ``("error", type, message,
retryable)``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import traceback
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from taskq.context import NamedTask
from taskq.logs import JsonFormatter
from taskq.results import Enqueued
from worker.artifacts import save_artifact
from worker.joblog import HANDLER_LOGGER, JobLogger, job_logger
from worker.progress import check_progress

if TYPE_CHECKING:
    import taskq.context


class ParentError(Exception):
    """A request the parent performed for the child failed there (e.g. ``IdempotencyConflict``,
    ``ValidationError``, ``UnknownTask``): its type name and message, as the parent saw them."""

    def __init__(self, type_name: str, message: str, retryable: bool = True) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.retryable = type_name, message, retryable


@dataclass(frozen=True, slots=True)
class ChildJob:
    """What the child is told about its job (picklable; no connections)."""

    job_id: str
    queue: str
    task: str
    attempt: int
    #: Where artifacts go (``REPORTS_DIR``).
    artifacts_dir: Path
    log_level: str = "INFO"


class ChildContext:
    """The context of an isolated handler: ``taskq.JobContext`` over the pipe to the worker."""

    def __init__(self, conn: Connection, job: ChildJob) -> None:
        self._conn, self._job = conn, job
        self._lock = threading.Lock()  # one request at a time on the pipe, even from threads
        self._log: JobLogger | None = None

    @property
    def job_id(self) -> str:
        return self._job.job_id

    @property
    def queue(self) -> str:
        return self._job.queue

    @property
    def task(self) -> str:
        return self._job.task

    @property
    def attempt(self) -> int:
        return self._job.attempt

    @property
    def log(self) -> JobLogger:
        """See ``taskq.JobContext.log``; on stderr (the worker's stdout belongs to the worker)."""
        if self._log is None:
            _log_to_stderr(self._job.log_level)
            self._log = job_logger(self.job_id, self.task, self.queue, self.attempt)
        return self._log

    def progress(self, percent: float, message: str | None = None) -> None:
        """See ``taskq.JobContext.progress``; sent to the worker, which writes it like any handler's."""
        check_progress(percent, message)
        try:
            with self._lock:
                self._conn.send(("progress", percent, message))
        except OSError:  # the worker is gone: this child is about to be, too
            pass

    def enqueue(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Enqueued:
        """See ``taskq.JobContext.enqueue``; the worker performs it, its errors come as ``ParentError``."""
        # By name (a declared function does not pickle): it must be one the worker's registry has.
        target = task if isinstance(task, str) else task.name
        payload = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
        with self._lock:
            self._conn.send(("enqueue", target, None if payload is None else dict(payload), key, options))
            reply = self._conn.recv()  # EOFError if the worker died: the handler fails with it
        if reply[0] == "enqueued":
            return Enqueued(reply[1], reply[2])
        raise ParentError(reply[1], reply[2], reply[3])

    def aenqueue(
        self,
        task: NamedTask | str,
        args: BaseModel | Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Coroutine[Any, Any, Enqueued]:
        """See ``taskq.JobContext.aenqueue``; refused at the call (an isolated handler never awaits)."""
        raise RuntimeError("ctx.aenqueue is for async def handlers; an isolated handler calls ctx.enqueue")

    def save_artifact(self, data: bytes, *, content_type: str, suffix: str = "") -> dict[str, str]:
        """See ``taskq.JobContext.save_artifact``; the child writes the file itself."""
        return save_artifact(self._job.artifacts_dir, self.job_id, data, content_type, suffix)


def _log_to_stderr(level: str) -> None:
    logger = logging.getLogger(HANDLER_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def child_main(conn: Connection, ref: str, args: dict[str, Any], job: ChildJob) -> None:
    """The child process: run the handler, send its outcome (everything goes back: the parent decides)."""
    from taskq import NonRetryableError
    from taskq.tasks import import_handler

    try:
        fn, model = import_handler(ref)
        conn.send(("done", fn(model.model_validate(args), ChildContext(conn, job))))
    except ParentError as exc:  # the job's error names the original, not the messenger
        _send_failure(conn, exc.type_name, exc.message, exc.retryable)
    except BaseException as exc:
        _send_failure(conn, type(exc).__name__, str(exc), not isinstance(exc, NonRetryableError))
    finally:
        conn.close()


def _send_failure(conn: Connection, type_name: str, message: str, retryable: bool) -> None:
    with contextlib.suppress(OSError):  # the worker is gone: nobody is waiting for this
        conn.send(("failed", type_name, message, retryable, traceback.format_exc()))


if TYPE_CHECKING:  # mypy checks here that the child's context is what handlers are promised

    def _implements(ctx: ChildContext) -> taskq.context.JobContext:
        return ctx
