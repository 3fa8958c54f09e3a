"""Real ``python -m worker`` processes: signals, exit codes, the healthcheck, several workers at once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from taskq import JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, WorkerProcess, settings_env, wait_for, wait_status

Spawn = Callable[..., WorkerProcess]
Client = Callable[[WorkerSettings], Taskq]


async def exit_code(proc: WorkerProcess, timeout: float) -> int:
    return await asyncio.to_thread(proc.wait, timeout)


async def running_ids(taskq: Taskq, ids: list[str]) -> set[str]:
    out = set()
    for job_id in ids:
        job = await taskq.get_job(job_id)
        if job is not None and job.status is JobStatus.RUNNING:
            out.add(job_id)
    return out


def check(settings: WorkerSettings) -> int:
    return subprocess.run(
        [sys.executable, "-m", "worker", "check"], env=settings_env(settings), timeout=30, check=False
    ).returncode


async def test_sigterm_lets_jobs_in_hand_finish_and_exits_0(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn
) -> None:
    settings = make_settings(worker_shutdown_grace=10)
    taskq = client_for(settings)
    ids = [(await taskq.enqueue("debug.sleep", {"seconds": 1.5})).id for _ in range(3)]
    proc = spawn_worker(settings)

    async def all_running() -> bool:
        return len(await running_ids(taskq, ids)) == 3

    await wait_for(all_running, 20, "3 jobs running")
    assert await asyncio.to_thread(check, settings) == 0
    proc.signal(signal.SIGTERM)
    assert await exit_code(proc, 15) == 0
    for job_id in ids:
        job = await wait_status(taskq, job_id, TERMINAL, timeout=1)
        assert job.status is JobStatus.SUCCEEDED
        assert job.attempts == 1
    assert await taskq.redis.zcard(taskq.keys.workers) == 0  # deregistered
    assert await asyncio.to_thread(check, settings) != 0


async def test_a_job_longer_than_the_grace_is_handed_back_and_finished_elsewhere(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn
) -> None:
    settings = make_settings(worker_shutdown_grace=0.5)
    taskq = client_for(settings)
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 2}, max_attempts=1)).id
    first = spawn_worker(settings)
    await wait_status(taskq, job_id, {JobStatus.RUNNING}, timeout=20)
    first.signal(signal.SIGTERM)
    assert await exit_code(first, 10) == 0
    job = await taskq.get_job(job_id)
    assert job is not None
    assert job.status is JobStatus.QUEUED
    assert job.attempts == 0  # handed back without using its only attempt
    second = spawn_worker(settings)
    job = await wait_status(taskq, job_id, TERMINAL, timeout=20)
    assert job.status is JobStatus.SUCCEEDED
    assert job.attempts == 1
    assert job.worker is not None
    assert str(second.proc.pid) in job.worker
    assert "handed back" in first.log()
    second.signal(signal.SIGTERM)
    assert await exit_code(second, 10) == 0


async def test_a_second_signal_hands_back_at_once(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn
) -> None:
    settings = make_settings(worker_shutdown_grace=60)
    taskq = client_for(settings)
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 60})).id
    proc = spawn_worker(settings)
    await wait_status(taskq, job_id, {JobStatus.RUNNING}, timeout=20)
    proc.signal(signal.SIGTERM)

    async def stopping() -> bool:
        return "no new claims" in proc.log()

    await wait_for(stopping, 10, "the first signal to be handled")
    started = time.monotonic()
    proc.signal(signal.SIGINT)
    assert await exit_code(proc, 30) == 0
    assert time.monotonic() - started < 20  # at once: not after the 60 s grace
    job = await taskq.get_job(job_id)
    assert job is not None
    assert job.status is JobStatus.QUEUED


async def test_cron_fires_once_per_tick_across_three_workers_and_survives_a_kill(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn
) -> None:
    cron = [{"name": "tick", "schedule": "* * * * * *", "task": "debug.noop", "args": {"tag": "cron"}}]
    settings = make_settings(cron_jobs=json.dumps(cron))
    taskq = client_for(settings)
    workers = [spawn_worker(settings) for _ in range(3)]

    def fired() -> dict[int, list[int]]:
        """tick -> indexes of the workers that logged firing it."""
        out: dict[int, list[int]] = {}
        for index, proc in enumerate(workers):
            for line in proc.log().splitlines():
                if '"cron fired"' in line:
                    out.setdefault(json.loads(line)["tick"], []).append(index)
        return out

    async def ticks(n: int) -> bool:
        return len(fired()) >= n

    await wait_for(lambda: ticks(4), 30, "4 cron ticks")
    before = fired()
    assert all(len(who) == 1 for who in before.values()), before
    # Kill whoever fired the latest tick: the others carry on, still once per tick.
    victim = before[max(before)][0]
    workers[victim].proc.kill()
    await asyncio.to_thread(workers[victim].wait, 10)
    # Read again once it is dead: it may have fired a tick between the read above and the kill.
    at_kill = fired()
    seen = len(at_kill)
    await wait_for(lambda: ticks(seen + 3), 30, "3 more ticks after the kill")
    after = fired()
    assert all(len(who) == 1 for who in after.values()), after
    assert all(victim not in who for tick, who in after.items() if tick > max(at_kill))
    ticks_seen = sorted(after)
    assert ticks_seen == list(range(ticks_seen[0], ticks_seen[-1] + 1))  # no tick skipped
    created = (await taskq.stats("default")).counters.get("enqueued", 0)
    assert created >= len(after)  # each tick one job (a tick in flight may not be logged yet)
    assert created <= len(after) + 2
    for proc in workers:
        if proc.proc.poll() is None:
            proc.signal(signal.SIGTERM)
            assert await exit_code(proc, 15) == 0


async def test_a_killed_workers_job_is_reaped_and_finished_by_another(
    make_settings: Callable[..., WorkerSettings], client_for: Client, spawn_worker: Spawn
) -> None:
    settings = make_settings(lease_seconds=1.5, heartbeat_seconds=0.3)
    taskq = client_for(settings)
    # Long enough that the SIGKILL below always lands mid-job: a job done first would be attempt 1's.
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 3.0}, max_attempts=3)).id
    victim = spawn_worker(settings)
    await wait_status(taskq, job_id, {JobStatus.RUNNING}, timeout=20)
    victim.signal(signal.SIGKILL)
    assert await exit_code(victim, 10) == -signal.SIGKILL
    survivor = spawn_worker(settings)
    job = await wait_status(taskq, job_id, TERMINAL, timeout=30)
    assert job.status is JobStatus.SUCCEEDED
    assert job.attempts == 2  # the killed run counted; nothing lost, nothing stuck
    assert job.worker is not None
    assert str(survivor.proc.pid) in job.worker
    survivor.signal(signal.SIGTERM)
    assert await exit_code(survivor, 15) == 0
