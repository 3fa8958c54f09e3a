"""A real ``python -m worker`` on a paused queue: the job it was running finishes, new jobs pile up
as pending and none runs, the worker blocks in Redis instead of spinning (few commands, little CPU),
and once the queue is resumed it drains them promptly."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from taskq import JobStatus, Taskq
from taskq.controls import set_paused
from taskq.workers import live_workers
from worker.settings import WorkerSettings
from worker.testing import WorkerProcess, wait_for, wait_status

Spawn = Callable[..., WorkerProcess]
Client = Callable[[WorkerSettings], Taskq]

#: How long the paused worker is watched. Long enough that a busy loop would show in thousands of
#: commands; the worker's own idle wait is far longer, so it should block right through.
WATCH_SECONDS = 2.0
#: The worker's idle wait, far above the resume's bound below: at the 5 s default, a wait begun just
#: before the watch ended soon after it, so a resume the worker missed could still look prompt, and
#: the bound had to be tight enough for a loaded box to break.
IDLE_WAIT_SECONDS = 30.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def commands_served(redis: Redis) -> dict[str, int]:
    return {k: int(v["calls"]) for k, v in (await redis.info("commandstats")).items()}


async def test_a_paused_queue_piles_up_while_the_worker_idles_then_drains_on_resume(
    make_settings: Callable[..., WorkerSettings],
    client_for: Client,
    spawn_worker: Spawn,
    redis: Redis,
    queue_name: str,
) -> None:
    settings = make_settings(
        worker_queues=queue_name, worker_concurrency=4, worker_idle_wait_seconds=IDLE_WAIT_SECONDS
    )
    taskq = client_for(settings)
    proc = spawn_worker(settings)

    async def registered() -> bool:
        assert proc.proc.poll() is None, proc.log()
        return any(queue_name in w.queues for w in await live_workers(taskq))

    await wait_for(registered, timeout=20, what="the worker to register")

    sleeper = await taskq.enqueue("debug.sleep", {"seconds": 1.0}, queue=queue_name)
    await wait_status(taskq, sleeper.id, {JobStatus.RUNNING})
    await set_paused(taskq, queue_name, True)
    ids = [(await taskq.enqueue("debug.noop", queue=queue_name)).id for _ in range(5)]

    # The job in hand finishes normally; the new ones are not touched.
    await wait_status(taskq, sleeper.id, {JobStatus.SUCCEEDED})
    cpu_before, commands_before = cpu_seconds(proc.proc.pid), await commands_served(redis)
    # A measured window with nothing else talking to Redis: every command in it is the worker's
    # (commandstats counts the commands scripts run too). Nothing is awaited to happen here.
    await asyncio.sleep(WATCH_SECONDS)
    cpu = cpu_seconds(proc.proc.pid) - cpu_before
    after = await commands_served(redis)
    calls = {k: n - commands_before.get(k, 0) for k, n in after.items() if n != commands_before.get(k, 0)}
    # Heartbeats (every 0.4 s) and maintenance (every 0.5 s): a few dozen. A worker spinning on the
    # paused queue would send thousands and burn most of a core.
    assert sum(calls.values()) < 150, calls
    assert calls.get("cmdstat_bzpopmin", 0) <= 1, calls  # it blocks right through (its idle wait)
    assert cpu < 0.25 * WATCH_SECONDS, f"worker used {cpu:.2f}s of CPU in {WATCH_SECONDS}s"
    stats = await taskq.stats(queue_name)
    assert (stats.pending, stats.running, stats.counters.get("succeeded")) == (5, 0, 1), stats
    for job_id in ids:
        job = await taskq.get_job(job_id, queue_name)
        assert job is not None
        assert job.status is JobStatus.QUEUED

    resumed = time.monotonic()
    await set_paused(taskq, queue_name, False)
    for job_id in ids:
        await wait_status(taskq, job_id, {JobStatus.SUCCEEDED}, timeout=10)
    # Woken by the resume, not by its 30 s idle wait running out.
    assert time.monotonic() - resumed < 10.0
