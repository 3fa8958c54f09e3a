"""Real worker processes, real SIGKILLs: nothing accepted is lost, nothing is stuck, duplicates are
bounded by kills x concurrency, and leases follow liveness rather than a fixed timeout."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from taskq import EnqueueRequest, JobStatus, QueueConfig, Taskq
from taskq.localserver import LocalRedis

WORKER = Path(__file__).with_name("minimal_worker.py")


class Fleet:
    def __init__(self, server: LocalRedis, prefix: str, queue: str, ledger_dir: Path, **opts: int) -> None:
        self.server, self.prefix, self.queue, self.ledger_dir, self.opts = (
            server,
            prefix,
            queue,
            ledger_dir,
            opts,
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def spawn(self) -> subprocess.Popen[bytes]:
        self.started += 1
        cmd = [
            sys.executable, str(WORKER), "--url", self.server.url, "--prefix", self.prefix,
            "--queue", self.queue, "--ledger", str(self.ledger_dir / f"ledger-{self.started}.txt"),
        ]  # fmt: skip
        for name, value in self.opts.items():
            cmd += [f"--{name.replace('_', '-')}", str(value)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        self.procs.append(proc)
        return proc

    def executions(self) -> Counter[str]:
        runs: Counter[str] = Counter()
        for path in self.ledger_dir.glob("ledger-*.txt"):
            runs.update(line for line in path.read_text().splitlines() if line)
        return runs

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


FleetFactory = Callable[..., Fleet]


@pytest.fixture
def fleet_factory(
    redis_server: LocalRedis, prefix: str, queue_name: str, tmp_path: Path
) -> Iterator[FleetFactory]:
    fleets: list[Fleet] = []

    def make(**opts: int) -> Fleet:
        fleet = Fleet(redis_server, prefix, queue_name, tmp_path, **opts)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.close()


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_sigkill_chaos_loses_nothing_and_bounds_duplicates(
    redis: Redis, prefix: str, queue_name: str, fleet_factory: FleetFactory
) -> None:
    concurrency, total, kills = 4, 3000, 8
    taskq = Taskq(redis, QueueConfig(prefix=prefix, lease_ms=1000))
    fleet = fleet_factory(concurrency=concurrency, lease_ms=1000, heartbeat_ms=200, reap_ms=100)
    for _ in range(3):
        fleet.spawn()
    accepted: list[str] = []
    rng = random.Random(7)
    for start in range(0, total, 100):
        reqs = [
            EnqueueRequest(
                "debug.sleep", {"seconds": rng.choice([0, 0.001, 0.005])}, queue=queue_name, max_attempts=50
            )
            for _ in range(100)
        ]
        accepted += [e.id for e in await taskq.enqueue_many(reqs)]
        if start % 300 == 0 and fleet.started - 3 < kills:
            victim = rng.choice([p for p in fleet.procs if p.poll() is None])
            fleet.kill(victim)
            fleet.spawn()  # the restart policy of a real deployment
    while fleet.started - 3 < kills:
        victim = rng.choice([p for p in fleet.procs if p.poll() is None])
        fleet.kill(victim)
        fleet.spawn()

    async def drained() -> bool:
        stats = await taskq.stats(queue_name)
        return stats.pending + stats.scheduled + stats.running == 0

    await wait_until(drained, 120, "the queue to drain")
    runs = fleet.executions()
    lost = set(accepted) - set(runs)
    assert not lost, f"{len(lost)} accepted jobs never ran"
    statuses: Counter[JobStatus] = Counter()
    for job_id in accepted:
        job = await taskq.get_job(job_id, queue_name)
        assert job is not None
        statuses[job.status] += 1
    assert statuses == Counter({JobStatus.SUCCEEDED: total}), statuses
    duplicates = sum(n - 1 for n in runs.values())
    print(f"chaos: {total} jobs, {kills} SIGKILLs, {duplicates} duplicate executions")
    assert duplicates <= kills * concurrency


async def test_sigkilled_workers_job_is_back_within_one_lease(
    redis: Redis, prefix: str, queue_name: str, fleet_factory: FleetFactory
) -> None:
    """Default lease (5 s), heartbeat every 1 s, the reaper ticks every 0.25 s on a live worker."""
    lease = 5.0
    taskq = Taskq(redis, QueueConfig(prefix=prefix))
    fleet = fleet_factory(concurrency=1, lease_ms=int(lease * 1000), heartbeat_ms=1000, reap_ms=250)
    victim = fleet.spawn()
    enq = await taskq.enqueue("debug.sleep", {"seconds": 60}, queue=queue_name)

    async def running() -> bool:
        job = await taskq.get_job(enq.id)
        return job is not None and job.status is JobStatus.RUNNING

    await wait_until(running, 10, "the job to start")
    fleet.spawn()  # a healthy peer that runs the reaper
    killed_at = time.monotonic()
    fleet.kill(victim)

    async def back() -> bool:
        job = await taskq.get_job(enq.id)
        return job is not None and job.attempts == 2

    await wait_until(back, 3 * lease, "the job to be taken back")
    elapsed = time.monotonic() - killed_at
    print(f"lease {lease}s: job back {elapsed:.2f}s after SIGKILL")
    assert elapsed <= lease + 0.25 + 0.5


async def test_healthy_long_job_is_never_reclaimed(
    redis: Redis, prefix: str, queue_name: str, fleet_factory: FleetFactory
) -> None:
    lease_ms = 400
    taskq = Taskq(redis, QueueConfig(prefix=prefix, lease_ms=lease_ms))
    fleet = fleet_factory(concurrency=1, lease_ms=lease_ms, heartbeat_ms=100, reap_ms=50)
    fleet.spawn()
    fleet.spawn()  # a second worker reaping eagerly: it must find nothing to take
    enq = await taskq.enqueue("debug.sleep", {"seconds": 10 * lease_ms / 1000}, queue=queue_name)

    async def done() -> bool:
        job = await taskq.get_job(enq.id)
        return job is not None and job.status.terminal

    await wait_until(done, 30, "the long job to finish")
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1)
    counters = (await taskq.stats(queue_name)).counters
    assert counters.get("lost", 0) == 0
    assert counters.get("stale_acks", 0) == 0
    assert fleet.executions()[enq.id] == 1
