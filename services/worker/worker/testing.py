"""Helpers for testing against a real worker: condition polling with a deadline, settings for a test
Redis, handles on a worker running in-process or as a ``python -m worker`` process. Used by taskq's own
suite; importing it costs nothing at run time (the worker never imports it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from taskq import Job, JobStatus, RedisUnavailable, Taskq, Waiter
from worker.manager import Worker
from worker.settings import WorkerSettings
from worker.slots import Held

#: How long a producer or worker process gets to start: a loaded 2-core box has taken 25 s.
START_SECONDS = 60.0


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll a condition with a deadline (synchronisation by state, never by a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await predicate():
                return
        except RedisUnavailable:
            pass  # a client reconnects on its next call (tests that restart Redis)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_status(taskq: Taskq, job_id: str, statuses: set[JobStatus], timeout: float = 10.0) -> Job:
    found: list[Job] = []

    async def done() -> bool:
        job = await taskq.get_job(job_id)
        if job is not None and job.status in statuses:
            found.append(job)
            return True
        return False

    await wait_for(done, timeout, f"job {job_id} to reach {sorted(s.value for s in statuses)}")
    return found[0]


TERMINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


async def running_in_hand(worker: Worker, job_id: str, timeout: float = 10.0) -> Held:
    """The worker's run of ``job_id`` once it holds the job and has started it. Not Redis's RUNNING:
    the claim script writes that before its reply reaches the worker, which only then takes the job in
    hand (and only then renews its lease)."""

    async def started() -> bool:
        h = worker.slots.held.get(job_id)
        return h is not None and h.task is not None

    await wait_for(started, timeout, f"the worker to hold and start job {job_id}")
    return worker.slots.held[job_id]


def worker_settings(redis_url: str, prefix: str, tmp_path: Path, **overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "taskq_prefix": prefix,
        "debug_tasks": True,
        "lease_seconds": 2.0,
        "heartbeat_seconds": 0.4,
        "retry_backoff_base_seconds": 0.05,
        "retry_backoff_max_seconds": 0.2,
        "worker_state_dir": tmp_path / "state",
        "reports_dir": tmp_path / "reports",
        "worker_shutdown_grace": 5.0,
        "worker_maintenance_seconds": 0.5,
        # The suites isolate tests by random queue names; production refuses "*" (a test of it sets QUEUES).
        "queues": "" if overrides.get("environment") == "production" else "*",
    }
    values.update(overrides)
    return WorkerSettings(_env_file=None, **values)  # type: ignore[call-arg]


def settings_env(settings: WorkerSettings, **extra: str) -> dict[str, str]:
    """The environment that makes ``python -m worker`` read the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "TASKQ_", "REDIS_"))}
    for name, value in settings.model_dump(exclude_defaults=False).items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class RunningWorker:
    worker: Worker
    task: asyncio.Task[int]
    clients: list[Redis | Waiter] = field(default_factory=list)

    async def stop(self, timeout: float = 20.0) -> int:
        self.worker.request_stop()
        async with asyncio.timeout(timeout):
            code = await self.task
        for client in self.clients:
            await client.aclose()
        return code


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
