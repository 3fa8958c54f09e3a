"""A worker serves declared queues only: one asked to serve (or fill by cron) a queue that QUEUES
does not declare refuses to start, with one clear log line, before touching Redis. Declared on both
sides, a new queue works end to end (the README's rolling-deploy recipe)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from taskq import JobStatus, Taskq, TaskqError
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, WorkerProcess, wait_status

Spawn = Callable[..., WorkerProcess]
CRON = json.dumps([{"name": "n", "schedule": "0 3 * * *", "task": "debug.noop", "queue": "ghost"}])


@pytest.mark.parametrize(
    "overrides",
    [{"worker_queues": "emails,ghost"}, {"worker_queues": "emails", "cron_jobs": CRON}],
    ids=["WORKER_QUEUES", "CRON_JOBS"],
)
async def test_worker_asked_to_serve_an_undeclared_queue_refuses_to_start(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    spawn_worker: Spawn,
    overrides: dict[str, str],
) -> None:
    settings = make_settings(queues="emails", **overrides)
    proc = spawn_worker(settings)
    code = await asyncio.to_thread(proc.wait, 30)
    assert code == 2, proc.log()
    (line,) = [json.loads(x) for x in proc.log().splitlines() if "refusing to start" in x]
    assert line["level"] == "error"
    assert line["undeclared"] == ["ghost"]
    assert "emails" in line["declared"]
    taskq = client_for(settings)
    assert await taskq.redis.zcard(taskq.keys.workers) == 0
    assert "ghost" not in await taskq.queues()


async def test_a_queue_declared_on_both_sides_is_served(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    spawn_worker: Spawn,
) -> None:
    settings = make_settings(queues="emails", worker_queues="emails")
    taskq = client_for(settings)  # core's client under the same declaration, as the producer runs
    with pytest.raises(TaskqError, match="not declared"):
        await taskq.enqueue("debug.noop", queue="ghost")
    job_id = (await taskq.enqueue("debug.noop", {"tag": "hi"}, queue="emails")).id
    proc = spawn_worker(settings, "burst")
    assert await asyncio.to_thread(proc.wait, 30) == 0, proc.log()
    job = await wait_status(taskq, job_id, TERMINAL, timeout=5)
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, "hi")
