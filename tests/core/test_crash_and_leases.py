"""Real ``python -m worker`` processes (prefetch on, acks fused with the next claim, the lease thread),
real SIGKILLs: nothing accepted is lost, nothing is stuck, duplicates are bounded by kills x capacity
(concurrency + prefetch), and leases follow liveness rather than a fixed timeout.

The ledger of executions is a webhook receiver in this test process: every run of a ``call_webhook``
job POSTs its marker here before the worker can ack it. A SIGKILLed worker cannot take back a POST it
made, nor forge one it did not make, so the ledger counts exactly the executions that happened.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from taskq import EnqueueRequest, JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, settings_env, wait_for, wait_status, worker_settings


class Ledger(ThreadingHTTPServer):
    """Counts the markers POSTed by webhook jobs: one line per execution, whoever ran it."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.runs: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.cut = 0  # POSTs cut off mid-request by a SIGKILL: not an execution (no marker arrived)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def handle_error(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.cut += 1

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.runs)


class _Hook(BaseHTTPRequestHandler):
    server: Ledger

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the test output

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.runs[json.loads(body)["marker"]] += 1
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    server = Ledger()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Fleet:
    """``python -m worker`` processes on one settings object; a SIGKILLed one is replaced, as a
    restart policy would."""

    def __init__(self, settings: WorkerSettings, tmp_path: Path) -> None:
        self.settings, self.tmp_path = settings, tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.kills = 0

    def spawn(self) -> subprocess.Popen[bytes]:
        log_path = self.tmp_path / f"worker-{len(self.procs)}.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env=settings_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
            )
        self.procs.append(proc)
        self.logs.append(log_path)
        return proc

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.kills += 1

    async def all_started(self) -> bool:
        """Every live worker has logged its start (its SIGTERM handler is installed by then)."""
        return all(
            '"worker started"' in log.read_text(errors="replace")
            for proc, log in zip(self.procs, self.logs, strict=True)
            if proc.poll() is None
        )

    async def stop_all(self) -> list[int]:
        """SIGTERM every live worker once it has started; their exit codes (each must be 0)."""
        await wait_for(self.all_started, 30, "every live worker to start")
        live = self.live()
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        return [proc.wait(30) for proc in live]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def log_tail(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in self.logs)


@pytest.fixture
def fleet_for(tmp_path: Path) -> Iterator[Any]:
    fleets: list[Fleet] = []

    def make(settings: WorkerSettings) -> Fleet:
        fleet = Fleet(settings, tmp_path)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.close()


async def registered(taskq: Taskq, n: int) -> bool:
    """n workers have sent a heartbeat (their lease thread runs: they claim and renew)."""
    return int(await taskq.redis.zcard(taskq.keys.workers)) >= n


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_sigkill_chaos_loses_nothing_and_bounds_duplicates(
    redis_url: str, prefix: str, tmp_path: Path, ledger: Ledger, fleet_for: Any, redis: Redis
) -> None:
    concurrency, prefetch, total, kills = 4, 4, 1500, 8
    settings = worker_settings(
        redis_url, prefix, tmp_path, worker_concurrency=concurrency, worker_prefetch=prefetch,
        lease_seconds=2.0, heartbeat_seconds=0.4, worker_maintenance_seconds=0.5,
        webhook_allowlist="127.0.0.1",
    )  # fmt: skip
    taskq = Taskq.from_settings(redis, settings)
    fleet: Fleet = fleet_for(settings)
    for _ in range(3):
        fleet.spawn()
    markers = [f"m{i}" for i in range(total)]
    reqs = [
        EnqueueRequest("call_webhook", {"url": ledger.url, "payload": {"marker": m}}, max_attempts=50)
        for m in markers
    ]
    accepted = [e.id for e in await taskq.enqueue_many(reqs)]
    rng = random.Random(7)
    # A kill at every tenth of the work: always under load, never after the queue drained.
    for k in range(1, kills + 1):

        async def progressed(k: int = k) -> bool:
            return (await taskq.stats("default")).processed_total >= k * total // (kills + 2)

        await wait_for(progressed, 60, f"{k}/{kills + 2} of the jobs done")
        fleet.kill(rng.choice(fleet.live()))
        fleet.spawn()

    async def drained() -> bool:
        stats = await taskq.stats("default")
        return stats.pending + stats.scheduled + stats.running == 0

    await wait_for(drained, 120, "the queue to drain")
    runs = ledger.snapshot()
    lost = [m for m in markers if runs[m] == 0]
    assert not lost, f"{len(lost)} accepted jobs never ran, e.g. {lost[:5]}"
    statuses: Counter[JobStatus] = Counter()
    for job_id in accepted:
        job = await taskq.get_job(job_id, "default")
        assert job is not None
        statuses[job.status] += 1
    assert statuses == Counter({JobStatus.SUCCEEDED: total}), statuses  # nothing stuck or failed
    duplicates = sum(n - 1 for n in runs.values())
    print(f"chaos: {total} jobs, {fleet.kills} SIGKILLs, {duplicates} duplicates, {ledger.cut} POSTs cut off")
    assert fleet.kills == kills
    assert duplicates <= kills * (concurrency + prefetch)
    assert await fleet.stop_all() == [0, 0, 0], fleet.log_tail()


async def test_sigkilled_workers_job_is_back_within_one_lease(
    redis_url: str, prefix: str, tmp_path: Path, fleet_for: Any, redis: Redis
) -> None:
    """Default lease (5 s) and heartbeat (1 s); maintenance (the reap) at most once per 1 s fleet-wide,
    tried by each worker's lease thread after a heartbeat. The victim renewed at most one heartbeat
    before it died, so its lease ends within ``lease`` of the kill; a live peer's next maintenance
    after that comes within one maintenance interval plus one heartbeat tick."""
    settings = worker_settings(
        redis_url, prefix, tmp_path, lease_seconds=5.0, heartbeat_seconds=1.0, worker_maintenance_seconds=1.0
    )
    lease, beat, reap = (
        settings.lease_seconds,
        settings.heartbeat_seconds,
        settings.worker_maintenance_seconds,
    )
    margin = 1.5  # a Redis round trip, a process scheduled late on a loaded 2-core box, our 20 ms poll
    taskq = Taskq.from_settings(redis, settings)
    fleet: Fleet = fleet_for(settings)
    victim = fleet.spawn()
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 120})).id
    await wait_status(taskq, job_id, {JobStatus.RUNNING}, timeout=30)
    fleet.spawn()  # a healthy peer that runs the reaper and takes the job
    await wait_for(lambda: registered(taskq, 2), 30, "the peer's first heartbeat")
    fleet.kill(victim)
    killed_at = time.monotonic()
    # Nothing renews it any more: its score in the active set is the lease's final deadline (Redis ms).
    deadline_ms = await taskq.redis.zscore(taskq.queue_keys("default").active, job_id)
    assert deadline_ms is not None

    async def back() -> bool:
        job = await taskq.get_job(job_id)
        return job is not None and job.attempts == 2

    await wait_for(back, 3 * (lease + reap + beat), "the job to be taken back")
    elapsed = time.monotonic() - killed_at
    seconds, micros = await taskq.redis.time()
    print(
        f"lease {lease:g}s: job back {elapsed:.2f}s after SIGKILL (bound {lease + reap + beat + margin:g}s)"
    )
    assert elapsed <= lease + reap + beat + margin
    # Taken back by the lease's expiry, not by anything quicker: by Redis's own clock, after it.
    assert seconds * 1000 + micros // 1000 >= deadline_ms
    assert await fleet.stop_all() == [0], fleet.log_tail()


async def test_healthy_long_job_is_never_reclaimed(
    redis_url: str, prefix: str, tmp_path: Path, fleet_for: Any, redis: Redis
) -> None:
    """A job four leases long, renewed five times a lease, beside a peer reaping as often as it can."""
    settings = worker_settings(
        redis_url, prefix, tmp_path, lease_seconds=2.0, heartbeat_seconds=0.4, worker_maintenance_seconds=0.4
    )
    taskq = Taskq.from_settings(redis, settings)
    fleet: Fleet = fleet_for(settings)
    fleet.spawn()
    fleet.spawn()
    await wait_for(lambda: registered(taskq, 2), 30, "two workers")
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 4 * settings.lease_seconds})).id
    job = await wait_status(taskq, job_id, TERMINAL, timeout=60)
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1)  # claimed once: never taken back
    counters = (await taskq.stats("default")).counters
    assert counters.get("lost", 0) == 0
    assert counters.get("stale_acks", 0) == 0
    assert await fleet.stop_all() == [0, 0], fleet.log_tail()
