"""Who this worker is, and the file through which ``python -m worker check`` finds out.

The worker id is host + pid + a random suffix: unique even when a container restarts with the same
host name and PID 1. The id file lives in ``$WORKER_STATE_DIR`` (a tmpfs under a read-only root fs).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

from worker.lease import Identity

ID_FILE = "taskq-worker.id"


def new_identity() -> Identity:
    host = socket.gethostname()
    pid = os.getpid()
    return Identity(f"{host}-{pid}-{secrets.token_hex(3)}", host, pid, time.time_ns() // 1_000_000)


def write_worker_id(directory: Path, worker_id: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{ID_FILE}.{os.getpid()}"
    tmp.write_text(worker_id, encoding="utf-8")
    tmp.replace(directory / ID_FILE)


def read_worker_id(directory: Path) -> str | None:
    try:
        text = (directory / ID_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None
