"""What the benchmarks share (``bench.client``, ``bench.core``, ``bench.worker``): the peers'
virtualenvs, an empty server between measures, stopping a process they started, percentiles, the
machine's load, and the markdown they print."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from taskq import CoreSettings, connect

BENCH = Path(__file__).resolve().parent
#: What each peer's virtualenv (``bench/.venv-<name>``, git-ignored) installs on first use.
PEERS = {
    "dramatiq": ["dramatiq[redis]==1.*"],
    "celery": ["celery[redis]==5.*"],
    "rq": ["rq==2.*"],
    "taskiq": ["taskiq==0.*", "taskiq-redis==1.*"],
}
#: The job every enqueue measure sends, ours and the peers' (bench/peers.py spells it in its scripts).
EMAIL = {"recipient_email": "someone@example.com", "subject": "Your report is ready", "body": "Hello! " * 20}


def peer_python(name: str) -> Path:
    venv = BENCH / f".venv-{name}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS[name]], check=True)
    return python


async def clean_slate(url: str) -> None:
    """Every measure starts on an empty server with a fresh AOF: what one phase left behind (200,000
    finished jobs waiting for their result TTL, an AOF growing past the auto-rewrite size, whose
    fork then competes for the 2 cores) must not slow the next one, ours or a peer's. A generous
    timeout: a flush of 200,000 jobs on a loaded host can outlast the services' 1.5 s."""
    redis = connect(CoreSettings(redis_url=url, environment="test", redis_socket_timeout=60))
    # SYNC: a lazy flush would free the old data in a background thread during the next measure.
    await redis.execute_command("FLUSHALL", "SYNC")  # type: ignore[no-untyped-call]
    await redis.bgrewriteaof()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = await redis.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            break
        await asyncio.sleep(0.05)
    await redis.aclose()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited 20 s later."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load_average() -> str:
    """Printed with the results: on a shared host the ratios mean more than the rates."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def table_head(*columns: str, numeric: int = 0) -> list[str]:
    """A markdown table's header and rule; the last ``numeric`` columns are right-aligned."""
    rule = ["---"] * (len(columns) - numeric) + ["---:"] * numeric
    return [f"| {' | '.join(columns)} |", f"| {' | '.join(rule)} |"]


def table_row(*cells: object) -> str:
    return f"| {' | '.join(map(str, cells))} |"


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A bench's command line, its module docstring as ``--help`` (line breaks kept)."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def emit(text: str, out: Path | None) -> None:
    """Write the report to ``out`` first (a closed stdout, ``| head``, must not lose the run), then
    print it."""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    print(text)
