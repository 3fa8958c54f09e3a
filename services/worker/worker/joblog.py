"""The logger a handler gets as ``ctx.log``: its lines carry the job's id, task, queue and attempt.

One logger for every task (``taskq.task``), so a deployment sets the level of its handlers' lines in
one place; the job fields travel as ``extra`` and the JSON formatter renders them as fields.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

#: The logger behind every ``ctx.log``.
HANDLER_LOGGER = "taskq.task"


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """A ``LoggerAdapter`` that adds the job fields to a call's own ``extra`` instead of replacing it
    (Python 3.11's adapter drops the caller's ``extra``; 3.13 added ``merge_extra`` for this)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        own = kwargs.get("extra")
        kwargs["extra"] = {**own, **(self.extra or {})} if own else self.extra
        return msg, kwargs


def job_logger(job_id: str, task: str, queue: str, attempt: int) -> JobLogger:
    fields: Mapping[str, object] = {"job_id": job_id, "task": task, "queue": queue, "attempt": attempt}
    return JobLogger(logging.getLogger(HANDLER_LOGGER), fields)
