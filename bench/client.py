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
  taskiq-redis's ``RedisStreamBroker`` (``taskiq worker --workers 1``). Both workers run side by side
  and the two systems' jobs alternate (ours then theirs, theirs then ours), each enqueued by a client
  process of its own after a 3 ms idle gap: a burst of noise on a shared host lands on both, not on
  whichever system was being measured. The handler takes ``perf_counter_ns`` (one monotonic clock for
  every process on the host) and pushes it to a list that its client reads; 50 warm-up pairs, then
  ``--jobs`` measured, per round.

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
from bench.stamp_loop import FIRST_JOB_TIMEOUT, serve_stamps
from bench.tasks import STAMPS, Email, Stamp, email, stamp
from taskq import Client, SyncClient
from taskq.commands.executor import exec_results
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
            got: list[Any] = []
            while len(got) < replies:
                reply = reader.gets()
                if reply is False:
                    reader.feed(sock.recv(65536))
                else:
                    got.append(reply)
            exec_results(got)  # a refusal raises, as it does for the clients
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


#: The latency table's two systems, in the order the report lists them.
OURS, TASKIQ = "taskq Client", "taskiq RedisStreamBroker"


def _start_taskq_worker(url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, REDIS_URL=url, TASKQ_TASKS=TASKS, LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=ROOT)


def _taskiq_env(url: str, workdir: Path) -> dict[str, str]:
    (workdir / "taskiq_bench.py").write_text(TASKIQ_BROKER)
    return dict(os.environ, BENCH_REDIS_URL=url, PYTHONPATH=f"{workdir}{os.pathsep}{ROOT}")  # and bench


def _start_taskiq_worker(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    cmd = [str(peer_python("taskiq")), "-m", "taskiq", "worker", "taskiq_bench:broker", "--workers", "1"]
    cmd += ["--log-level", "WARNING"]
    # Its shutdown prints a traceback (a connection closed under it): not ours to show.
    return subprocess.Popen(cmd, env=env, cwd=workdir, stderr=subprocess.DEVNULL)


async def serve_taskq_stamps(url: str) -> None:
    """Our side's client process in an interleaved run (``bench.stamp_loop.serve_stamps``)."""
    stamps = redis.asyncio.Redis.from_url(url, socket_timeout=FIRST_JOB_TIMEOUT + 30)
    async with Client.from_url(url, taskq_tasks=TASKS) as client:
        await serve_stamps(lambda t0: client.enqueue(stamp, Stamp(t0=t0)), stamps, STAMPS, IDLE_GAP)
    await stamps.aclose()


#: Runs ``serve_taskq_stamps`` in a process of its own (argv: the server's URL).
TASKQ_LATENCY = (
    "import asyncio, sys; from bench.client import serve_taskq_stamps as s; asyncio.run(s(sys.argv[1]))"
)


class StampClient:
    """One system's enqueuing process, driven a job at a time over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        if proc.stdin is None or proc.stdout is None:
            raise RuntimeError("a client's pipes did not open")
        self.proc, self.to, self.back = proc, proc.stdin, proc.stdout

    @classmethod
    async def start(cls, python: str, script: str, *args: str, env: dict[str, str], cwd: Path) -> StampClient:
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(
            python, "-c", script, *args, stdin=pipe, stdout=pipe, env=env, cwd=cwd
        )
        return cls(proc)

    async def ready(self) -> None:
        if (await self.back.readline()).strip() != b"ready":
            raise RuntimeError("a latency client did not start (see its output above)")

    async def one(self) -> float:
        self.to.write(b"1\n")
        await self.to.drain()
        return float(await self.back.readline())

    async def close(self) -> None:
        self.to.close()
        await self.proc.wait()


async def _interleaved(url: str, jobs: int, env: dict[str, str], workdir: Path) -> dict[str, list[float]]:
    """Both systems' jobs one after the other, the order swapped every pair, so both meet the host
    in the same state. Each system's client is a process of its own, alike on both sides: it
    sleeps the idle gap, enqueues, waits for the stamp, and reports, one job per line it is sent."""
    ours_env = dict(os.environ, PYTHONPATH=str(ROOT))
    clients = {
        OURS: await StampClient.start(sys.executable, TASKQ_LATENCY, url, env=ours_env, cwd=ROOT),
        TASKIQ: await StampClient.start(
            str(peer_python("taskiq")), TASKIQ_LATENCY, str(IDLE_GAP), env=env, cwd=workdir
        ),
    }
    try:
        for client in clients.values():
            await client.ready()  # its first job came back: its worker is up
        runs: dict[str, list[float]] = {name: [] for name in clients}
        order = list(clients.items())
        for i in range(WARMUP + jobs):
            for name, client in order if i % 2 == 0 else reversed(order):
                latency = await client.one()
                if i >= WARMUP:
                    runs[name].append(latency)
        return runs
    finally:
        for client in clients.values():
            await client.close()


def latency_round(url: str, jobs: int, workdir: Path) -> dict[str, list[float]]:
    """Both workers idle side by side on one server, their jobs interleaved (``_interleaved``)."""
    asyncio.run(clean_slate(url))
    env = _taskiq_env(url, workdir)
    workers = [_start_taskq_worker(url), _start_taskiq_worker(env, workdir)]
    try:
        return asyncio.run(_interleaved(url, jobs, env, workdir))
    finally:
        for worker in workers:
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
    if latencies:
        lines += [
            "",
            "Per round, both workers idle side by side on the one server and the systems' jobs"
            " alternate one for one (the order swapped every pair), each sent by a client process"
            f" of its own after a {IDLE_GAP * 1000:g} ms idle gap.",
        ]
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
                runs = latency_round(server.url, args.jobs, Path(tmp))
                for name, samples in runs.items():
                    p50, p99 = statistics.median(samples), pct(samples, 99)
                    print(f"  {name:24} p50 {p50:.3f} ms  p99 {p99:.3f} ms", flush=True)
                latencies.append(runs)
    text = report("python -m bench.client " + " ".join(sys.argv[1:]), enqueues, latencies, loads)
    emit(text, args.out)


if __name__ == "__main__":
    main()
