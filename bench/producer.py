"""Producer benchmark: POST /send-email and POST /jobs against the original pattern, with wrk.

    uv run --frozen python -m bench.producer [--duration 5] [--out bench/results/producer.md]

Starts one Valkey (taskq.localserver) and, all at once, each server on 127.0.0.1: the original
pattern (bench/original_app.py) and the real producer (``python -m producer``), each with 1 and 2
uvicorn workers. wrk (Debian's package, C, not the bottleneck at this size: 1 thread up to 16
connections, 2 beyond) drives each endpoint at 1, 16 and 64 connections after a 1 s warm-up, the
configurations interleaved over ``--rounds`` rounds (each row: the median round). Redis is flushed
between runs. Bounded: about (duration + 2) s per row and round.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis

from taskq.localserver import LocalRedis, free_port

EMAIL = '{"recipient_email": "ada@example.com", "subject": "Hello", "body": "A short plain-text body."}'
JOB = (
    '{"task": "send_email", "args": {"recipient_email": "ada@example.com", "subject": "Hello", '
    '"body": "A short plain-text body."}, "priority": 5}'
)
CONCURRENCY = (1, 16, 64)


@dataclass(frozen=True, slots=True)
class Row:
    server: str
    workers: int
    endpoint: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk_script(directory: str, body: str) -> str:
    path = Path(directory) / f"post-{abs(hash(body))}.lua"
    path.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{body}]]\n',
        encoding="utf-8",
    )
    return str(path)


def _ms(text: str | None) -> float:
    """wrk's latency ("812.00us", "3.21ms", "1.02s", "1.10m") in ms; NaN when it printed none."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text or "")
    if match is None:
        return math.nan
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match.group(2)]


def run_wrk(url: str, script: str, connections: int, duration: float) -> tuple[float, float, float, int]:
    threads = 1 if connections <= 16 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(found.group(1)) if found else 0.0
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))  # wrk pads "1.02s "
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    count = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in errors.groups()) if errors else 0)
    if "50" not in lat or "99" not in lat:
        print(f"wrk printed no latency percentiles:\n{out}", file=sys.stderr)
    return rps, _ms(lat.get("50")), _ms(lat.get("99")), count


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (127.0.0.1 only)
                if response.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling a child process's port: nothing to subscribe to
    raise RuntimeError(f"{url} did not come up within {timeout}s")


def start_server(kind: str, workers: int, port: int, redis_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_REDIS_URL": redis_url}
    if kind == "original":
        cmd = [sys.executable, "-m", "uvicorn", "bench.original_app:app", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
    else:
        env |= {"API_HOST": "127.0.0.1", "API_PORT": str(port), "API_WORKERS": str(workers),
                "REDIS_URL": redis_url, "ENVIRONMENT": "development", "LOG_LEVEL": "info"}  # fmt: skip
        cmd = [sys.executable, "-m", "producer"]
    # The producer logs one JSON line per request, as in production; the lines go to /dev/null.
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True, slots=True)
class Target:
    server: str
    workers: int
    endpoint: str
    url: str
    script: str


def bench(
    duration: float,
    server_filter: str | None,
    connections_list: tuple[int, ...],
    workers_list: tuple[int, ...],
    rounds: int,
) -> list[Row]:
    """Every server runs at once (idle ones cost nothing); the rows are measured interleaved, round
    after round, and each row reports its median round. The machine is shared, so load from elsewhere
    falls on every configuration alike instead of on whichever ran during it."""
    plan = [("original", ["/send-email"]), ("taskq", ["/send-email", "/jobs"])]
    with LocalRedis().running() as server, tempfile.TemporaryDirectory() as tmp:
        flush = redis.Redis.from_url(server.url)
        scripts = {"/send-email": wrk_script(tmp, EMAIL), "/jobs": wrk_script(tmp, JOB)}
        procs: list[subprocess.Popen[bytes]] = []
        targets: list[Target] = []
        try:
            for kind, endpoints in plan:
                if server_filter and kind != server_filter:
                    continue
                for workers in workers_list:
                    port = free_port()
                    procs.append(start_server(kind, workers, port, server.url))
                    wait_ready(f"http://127.0.0.1:{port}/docs")
                    for endpoint in endpoints:
                        url = f"http://127.0.0.1:{port}{endpoint}"
                        targets.append(Target(kind, workers, endpoint, url, scripts[endpoint]))
            samples: dict[tuple[Target, int], list[tuple[float, float, float, int]]] = {}
            for round_no in range(rounds):
                for connections in connections_list:
                    for target in targets:
                        flush.flushall()
                        run_wrk(target.url, target.script, connections, 1)  # warm-up
                        sample = run_wrk(target.url, target.script, connections, duration)
                        samples.setdefault((target, connections), []).append(sample)
                        print(
                            round_no,
                            target.server,
                            target.workers,
                            target.endpoint,
                            connections,
                            sample,
                            flush=True,
                        )
        finally:
            for proc in procs:
                stop_server(proc)
            flush.close()
    rows = []
    for target in targets:
        for connections in connections_list:
            runs = sorted(samples[(target, connections)], key=lambda r: r[0])
            rps, p50, p99, errors = runs[len(runs) // 2]  # the median round by requests/s
            rows.append(
                Row(target.server, target.workers, target.endpoint, connections, rps, p50, p99, errors)
            )
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| server | uvicorn workers | endpoint | connections | requests/s | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.server} | {r.workers} | {r.endpoint} | {r.connections} | {r.rps:,.0f} | "
            f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--only", choices=["original", "taskq"], help="benchmark one server only")
    parser.add_argument(
        "--connections", default=",".join(map(str, CONCURRENCY)), help="comma-separated wrk connection counts"
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated uvicorn worker counts")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each row is the median")
    parser.add_argument("--out", help="write the markdown table to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    conns = tuple(int(c) for c in args.connections.split(","))
    workers = tuple(int(w) for w in args.workers.split(","))
    rows = bench(args.duration, args.only, conns, workers, args.rounds)
    text = table(rows)
    print(text)
    if args.out:
        header = (
            f"# Producer benchmark\n\nRun {started} on {os.cpu_count()} cores ({socket.gethostname()}), "
            f"wrk on the same machine; every row is the median of {args.rounds} interleaved rounds of "
            f"{args.duration:g} s.\n\n"
            "Command: `uv run --frozen python -m bench.producer --out bench/results/producer.md`\n\n"
        )
        Path(args.out).write_text(header + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
