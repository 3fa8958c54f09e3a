"""JSON-lines logging: one object per line; the message is a constant and user data are fields.

Also configures uvicorn's own loggers, so nothing the process prints is plain text. Its access log is
off: ``RequestContext`` writes one richer line per request instead, through ``AccessLog``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, BinaryIO

import orjson

from taskq.logs import utc_timestamp


def log_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document (also handed to uvicorn as its ``log_config``)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "taskq.logs.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {
            "producer": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def configure(level: str = "info") -> None:
    import logging.config

    logging.config.dictConfig(log_config(level))
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]


class AccessLog:
    """The one JSON line per request, written in batches: one write per flush instead of a write and a
    flush per request (py-spy: the syscall was most of a log line's cost). Like nginx's
    ``access_log ... buffer=64k flush=250ms``: lines go out within ``interval`` seconds, when 64 KiB
    have gathered, or at shutdown; a SIGKILL can lose the last ``interval`` of them."""

    def __init__(
        self, stream: BinaryIO | None = None, interval: float = 0.25, max_bytes: int = 64 * 1024
    ) -> None:
        self.stream = stream
        self.interval = interval
        self.max_bytes = max_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, fields: dict[str, Any]) -> None:
        line = orjson.dumps(
            {"ts": utc_timestamp(), "level": "info", "logger": "producer.access", "msg": "request", **fields}
        )
        self._lines.append(line)
        self._size += len(line) + 1
        if self._size >= self.max_bytes:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        stream = self.stream or sys.stderr.buffer
        stream.write(b"\n".join(self._lines) + b"\n")
        stream.flush()
        self._lines.clear()
        self._size = 0
