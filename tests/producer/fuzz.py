"""Schemathesis over the producer's /openapi.json: no 5xx, no response that contradicts the schema.

    uv run --frozen python tests/producer/fuzz.py [--max-examples 30] [--max-time 240]

Starts a Valkey and ``python -m producer`` (API_TOKEN set, so auth is fuzzed too) on 127.0.0.1 free
ports, runs ``schemathesis run`` with every check, then stops both. Bounded by --max-examples per
operation and --max-time overall; exits with schemathesis's code (0: nothing found).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from taskq.localserver import LocalRedis, free_port

TOKEN = "fuzz-token-0123456789abcdef"
HERE = Path(__file__).parent
CONFIG = HERE / "schemathesis.toml"


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the producer exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (127.0.0.1 only)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # waiting for a child process to bind its port: nothing to subscribe to
    raise RuntimeError(f"{url} not ready within {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-examples", type=int, default=30, help="test cases per operation and phase")
    parser.add_argument("--max-time", type=int, default=240, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    port = free_port()
    with LocalRedis().running() as server, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "API_HOST": "127.0.0.1", "API_PORT": str(port), "REDIS_URL": server.url, "API_TOKEN": TOKEN,
            "ENVIRONMENT": "test", "DEBUG_TASKS": "true", "LOG_LEVEL": "warning",
        }  # fmt: skip
        with Path(tmp, "producer.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "producer"], env=env, stdout=log, stderr=log)
            try:
                code = run_schemathesis(port, proc, args)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if proc.returncode != 0:  # the producer itself failed (a graceful stop exits 0)
            print(Path(tmp, "producer.log").read_text()[-4000:], file=sys.stderr)
            return code or 1
    return code


def run_schemathesis(port: int, proc: subprocess.Popen[bytes], args: argparse.Namespace) -> int:
    wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG),
        "run", f"http://127.0.0.1:{port}/openapi.json",
        # use_after_free: DELETE /jobs/{id} cancels a job, it does not erase it (it stays readable).
        "--checks", "all", "--exclude-checks", "use_after_free",
        "--max-examples", str(args.max_examples), "--max-time", str(args.max_time),
        "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "70", "--workers", "1",
        "--suppress-health-check", "too_slow,filter_too_much", "--no-shrink",
    ]  # fmt: skip
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    hooks_env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "PYTHONPATH": str(HERE)}
    return subprocess.run(cmd, env=hooks_env, timeout=args.max_time + 120, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
