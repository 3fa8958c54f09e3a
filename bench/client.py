"""The default clients against their peers, same server, same run, interleaved round by round.

    python -m bench.client [--rounds 3] [--jobs 500] [--enqueues 5000] [--out bench/results/client.md]

- enqueue: one job per call, sequential, from ``taskq.Client`` (asyncio's default loop, and uvloop)
  and ``taskq.SyncClient``, both as built by ``from_url`` (the lean wire by default), against
  Dramatiq's ``actor.send()``. Both sides enqueue the same three string fields; ours builds and
  checks its args model on every call (``bench.tasks.Email``). Each measure starts on an empty server.
  Two reference rows: the floor, a bare PING round trip on a plain socket (no call can beat it), and
  the ceiling, the MULTI/EXEC a one-job enqueue writes, prebuilt and sent on a plain socket (no taskq
  client can beat it while an enqueue writes what it writes).
- latency: from calling the default client's enqueue to the handler starting, one job at a time to an
  idle worker (``python -m worker``, defaults, ``TASKQ_TASKS=bench.tasks``), against taskiq with
  taskiq-redis's ``RedisStreamBroker`` (``taskiq worker --workers 1``). The handler takes
  ``perf_counter_ns`` (one monotonic clock for every process on the host) and pushes it to a list
  that the enqueuing process reads; 50 warm-up jobs, then ``--jobs`` measured, per round.

The peers live in their own virtualenvs under ``bench/.venv-*`` (git-ignored), made on first use.
The machine's load is printed with the results: on a shared host read the ratios, not the rates.
"""

from __future__ import annotations

import os

os.environ.setdefault("TASKQ_ENV_FILE", "")  # a developer's .env must not point the clients elsewhere

import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hiredis
import redis
import uvloop
from redis.asyncio.connection import parse_url

from bench.common import (
    EMAIL,
    arguments,
    clean_slate,
    emit,
    load_average,
    pct,
    peer_python,
    stop,
    table_head,
    table_row,
)
from bench.peers import DRAMATIQ_SEND, TASKIQ_BROKER, TASKIQ_LATENCY
from bench.stamp_loop import stamp_latencies
from bench.tasks import STAMPS, Email, Stamp, email, stamp
from taskq import Client, SyncClient
from taskq.localserver import LocalRedis

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 50
#: Between two latency jobs: the worker has acked and is blocked waiting again (an idle worker).
IDLE_GAP = 0.003


@dataclass(frozen=True, slots=True)
class Rate:
    jobs_per_s: float
    median_us: float  # the median single call: steadier than the rate on a shared host

    @classmethod
    def of(cls, calls: list[float]) -> Rate:
        return cls(len(calls) / sum(calls), statistics.median(calls) * 1e6)


#: The enqueue table's reference row: a bare round trip, what every client's call pays at least.
FLOOR = "floor: bare PING round trip"
#: And the ceiling for taskq's clients: the enqueue's writes alone, no client code around them.
CEILING = "ceiling: taskq's enqueue writes, prebuilt"

#: The bench's tasks, loaded by the clients and the worker alike (TASKQ_TASKS).
TASKS = "bench.tasks"


# ------------------------------------------------------------------ enqueue, one job per call


async def _async_enqueues(url: str, n: int) -> Rate:
    async with Client.from_url(url, taskq_tasks=TASKS) as client:
        await client.enqueue(email, Email(**EMAIL))  # connect, register the queue
        calls = []
        clock = time.perf_counter
        for _ in range(n):
            t = clock()
            await client.enqueue(email, Email(**EMAIL))
            calls.append(clock() - t)
    return Rate.of(calls)


def sync_enqueues(url: str, n: int) -> Rate:
    with SyncClient.from_url(url, taskq_tasks=TASKS) as client:
        client.enqueue(email, Email(**EMAIL))
        calls = []
        clock = time.perf_counter
        for _ in range(n):
            t = clock()
            client.enqueue(email, Email(**EMAIL))
            calls.append(clock() - t)
    return Rate.of(calls)


@contextlib.contextmanager
def plain_socket(url: str) -> Iterator[socket.socket]:
    """A bare TCP connection to the server (no client library), authenticated when the URL says so."""
    options = parse_url(url)
    with socket.create_connection((options.get("host", "localhost"), int(options.get("port", 6379)))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if options.get("password"):
            auth: list[Any] = ["AUTH", options["password"]]
            if options.get("username"):
                auth.insert(1, options["username"])
            sock.sendall(hiredis.pack_command(tuple(auth)))
            sock.recv(64)
        yield sock


def bare_round_trips(url: str, n: int) -> Rate:
    """The floor under any client's call: a PING and its +PONG over a plain blocking socket, no client
    library, no job. A call that costs the floor plus nothing is still this slow: when the floor is
    over half of Dramatiq's call, no client can be 2x Dramatiq on that host at that moment."""
    with plain_socket(url) as sock:
        ping = hiredis.pack_command(("PING",))
        calls = []
        clock = time.perf_counter
        for _ in range(n):
            t = clock()
            sock.sendall(ping)
            sock.recv(64)  # "+PONG\r\n" comes in one segment
            calls.append(clock() - t)
    return Rate.of(calls)


def prebuilt_writes(url: str, n: int) -> Rate:
    """The ceiling for any taskq client: an enqueue's own writes (the MULTI/EXEC that
    ``SyncClient.enqueue`` sends for one job), planned and packed before the clock starts, sent over
    a plain socket, the replies read with hiredis. What is left is the round trip and Redis's work."""
    with SyncClient.from_url(url, taskq_tasks=TASKS) as client:
        client.enqueue(email, Email(**EMAIL))  # register the queue, as the clients' first call does
        planner, commands = client.taskq.planner, client.taskq.commands
        packed, replies = [], 0
        for _ in range(n):
            request = client.request(email, Email(**EMAIL))
            writes = planner.prepare([request], lambda queue: commands[queue].enqueue).plain
            assert writes is not None, "a plain job is written by one MULTI/EXEC"
            packed.append(b"".join(hiredis.pack_command(c) for c in [("MULTI",), *writes, ("EXEC",)]))
            replies = len(writes) + 2
    with plain_socket(url) as sock:
        reader = hiredis.Reader()
        calls = []
        clock = time.perf_counter
        for data in packed:
            t = clock()
            sock.sendall(data)
            got = 0
            while got < replies:
                reply = reader.gets()
                if reply is False:
                    reader.feed(sock.recv(65536))
                    continue
                parts = reply if isinstance(reply, list) else [reply]
                if reply is None or any(isinstance(part, hiredis.ReplyError) for part in parts):
                    raise RuntimeError(f"the prebuilt enqueue was refused: {reply}")
                got += 1
            calls.append(clock() - t)
    return Rate.of(calls)


def peer_json(name: str, script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [str(peer_python(name)), "-c", script, *args],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def enqueue_round(url: str, n: int) -> dict[str, Rate]:
    measures: dict[str, Callable[[], Rate]] = {
        "taskq Client (asyncio)": lambda: asyncio.run(_async_enqueues(url, n)),
        "taskq Client (uvloop)": lambda: uvloop.run(_async_enqueues(url, n)),
        "taskq SyncClient": lambda: sync_enqueues(url, n),
        "Dramatiq send()": lambda: Rate(**peer_json("dramatiq", DRAMATIQ_SEND, url, str(n))),
        CEILING: lambda: prebuilt_writes(url, n),
        FLOOR: lambda: bare_round_trips(url, n),
    }
    rates = {}
    for name, measure in measures.items():
        asyncio.run(clean_slate(url))
        rates[name] = measure()
        rate = rates[name]
        print(f"  {name:24} {rate.jobs_per_s:8,.0f} jobs/s  median call {rate.median_us:6.1f} us", flush=True)
    return rates


# ------------------------------------------------------------------ latency, enqueue -> handler start


async def _taskq_latency(url: str, jobs: int) -> list[float]:
    stamps = redis.asyncio.Redis.from_url(url, socket_timeout=90)  # the first waits for start-up
    async with Client.from_url(url, taskq_tasks=TASKS) as client:
        latencies = await stamp_latencies(
            lambda t0: client.enqueue(stamp, Stamp(t0=t0)),
            stamps,
            STAMPS,
            warmup=WARMUP,
            jobs=jobs,
            gap=IDLE_GAP,
        )
    await stamps.aclose()
    return latencies


def taskq_latency(url: str, jobs: int) -> list[float]:
    env = dict(os.environ, REDIS_URL=url, TASKQ_TASKS=TASKS, LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    worker = subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=ROOT)
    try:
        return asyncio.run(_taskq_latency(url, jobs))
    finally:
        stop(worker)


def taskiq_latency(url: str, jobs: int, workdir: Path) -> list[float]:
    (workdir / "taskiq_bench.py").write_text(TASKIQ_BROKER)
    env = dict(
        os.environ, BENCH_REDIS_URL=url, PYTHONPATH=f"{workdir}{os.pathsep}{ROOT}"
    )  # and bench.stamp_loop
    python = str(peer_python("taskiq"))
    cmd = [python, "-m", "taskiq", "worker", "taskiq_bench:broker", "--workers", "1"]
    cmd += ["--log-level", "WARNING"]
    # Its shutdown prints a traceback (a connection closed under it): not ours to show.
    worker = subprocess.Popen(cmd, env=env, cwd=workdir, stderr=subprocess.DEVNULL)
    try:
        out = peer_json("taskiq", TASKIQ_LATENCY, str(WARMUP), str(jobs), str(IDLE_GAP), env=env)
        return [float(v) for v in out["latencies_ms"]]
    finally:
        stop(worker)


# ------------------------------------------------------------------ report


def report(
    command: str, enqueues: list[dict[str, Rate]], latencies: list[dict[str, list[float]]], loads: list[str]
) -> str:
    lines = [
        "## Default clients vs peers (same server, same run)",
        "",
        f"`{command}` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, Python "
        f"{sys.version.split()[0]}, Valkey on 127.0.0.1 (AOF everysec). Per round: {'; '.join(loads)}.",
        "",
        "### Enqueue, one job per call (target: each default client ≥ 2x Dramatiq `send()`)",
        "",
        *table_head(
            "round",
            "client",
            "jobs/s",
            "median call",
            "x Dramatiq (jobs/s)",
            "x Dramatiq (median call)",
            numeric=4,
        ),
    ]
    for r, rates in enumerate(enqueues, 1):
        peer = rates["Dramatiq send()"]
        for name, rate in rates.items():
            ratio = f"{rate.jobs_per_s / peer.jobs_per_s:.2f}"
            speed = f"{peer.median_us / rate.median_us:.2f}"
            lines.append(
                table_row(r, name, f"{rate.jobs_per_s:,.0f}", f"{rate.median_us:.0f} µs", ratio, speed)
            )
    if enqueues:
        lines += [
            "",
            f"The {FLOOR!r} row is no client: a PING over a plain socket, no library and no job. Its"
            ' "x Dramatiq (median call)" is the most any client could reach in that round, since'
            " every call pays at least that round trip.",
            f"The {CEILING!r} row is no client either: the MULTI/EXEC that `SyncClient.enqueue` writes"
            " for one job, planned and packed before the clock starts, sent on a plain socket. Its"
            ' "x Dramatiq (median call)" is the most a taskq client could reach with these writes,'
            " whatever its own code costs.",
        ]
    lines += [
        "",
        "### Enqueue → handler start, idle worker (target: our p50 and p99 below taskiq's in every run)",
        "",
        *table_head("round", "system", "jobs", "p50", "p99", "max", numeric=4),
    ]
    for r, runs in enumerate(latencies, 1):
        for name, samples in runs.items():
            p50, p99 = statistics.median(samples), pct(samples, 99)
            lines.append(
                table_row(r, name, len(samples), f"{p50:.3f} ms", f"{p99:.3f} ms", f"{max(samples):.3f} ms")
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=500, help="latency jobs per round and system")
    parser.add_argument("--enqueues", type=int, default=5000, help="enqueue calls per round and client")
    parser.add_argument("--skip", choices=["enqueue", "latency"], help="leave one part out")
    parser.add_argument("--out", type=Path, help="write the markdown tables here")
    args = parser.parse_args()
    enqueues: list[dict[str, Rate]] = []
    latencies: list[dict[str, list[float]]] = []
    loads: list[str] = []
    with LocalRedis().running() as server, tempfile.TemporaryDirectory() as tmp:
        for r in range(1, args.rounds + 1):
            loads.append(load_average())
            print(f"round {r} ({loads[-1]})", flush=True)
            if args.skip != "enqueue":
                enqueues.append(enqueue_round(server.url, args.enqueues))
            if args.skip != "latency":
                runs: dict[str, list[float]] = {}
                systems: list[tuple[str, Callable[[], list[float]]]] = [
                    ("taskq Client", lambda: taskq_latency(server.url, args.jobs)),
                    ("taskiq RedisStreamBroker", lambda: taskiq_latency(server.url, args.jobs, Path(tmp))),
                ]
                for name, measure in systems:
                    asyncio.run(clean_slate(server.url))
                    runs[name] = measure()
                    p50, p99 = statistics.median(runs[name]), pct(runs[name], 99)
                    print(f"  {name:24} p50 {p50:.3f} ms  p99 {p99:.3f} ms", flush=True)
                latencies.append(runs)
    text = report("python -m bench.client " + " ".join(sys.argv[1:]), enqueues, latencies, loads)
    emit(text, args.out)


if __name__ == "__main__":
    main()
