"""JSON-lines logging to stdout: one object per line, user data in fields, never in the format string.

Job lines carry ``job_id``, ``task``, ``attempt``, ``queue``, ``duration_ms`` and ``outcome``; a failed
job's traceback goes in ``traceback`` (the log is the only place it appears: API users see the exception
type and message).
"""

from __future__ import annotations

import logging
import sys

from taskq.logs import JsonFormatter


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO with the full URL: the webhook handler logs what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
