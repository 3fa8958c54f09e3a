"""``GET /workers`` says which tasks each worker runs, so a job dead-lettered as ``unknown_task`` can be
traced to the workers that lack its task: a worker loading ``TASKQ_TASKS`` lists the user's tasks
beside the built-ins, one without lists the built-ins only. Real ``python -m worker`` processes and
the real producer app, on the same Redis and prefix."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from producer.testing import make_settings as producer_settings
from producer.testing import serve
from taskq import Taskq
from taskq.registry import tasks_of
from taskq.workers import WorkerBeat, beat
from worker.settings import WorkerSettings
from worker.testing import WorkerProcess, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ACME = "acme_tasks.tasks"


def acme_task_names() -> set[str]:
    if str(FIXTURES) not in sys.path:
        sys.path.insert(0, str(FIXTURES))
    return {task.name for task in tasks_of(ACME)}


async def test_get_workers_lists_the_tasks_each_worker_runs(
    make_settings: Callable[..., WorkerSettings],
    spawn_worker: Callable[..., WorkerProcess],
    redis_url: str,
    prefix: str,
) -> None:
    pythonpath = os.pathsep.join(p for p in (str(FIXTURES), os.environ.get("PYTHONPATH", "")) if p)
    with_acme = spawn_worker(make_settings(taskq_tasks=ACME), PYTHONPATH=pythonpath)
    plain = spawn_worker(make_settings())
    async with serve(producer_settings(redis_url, prefix)) as client:
        by_pid: dict[int, dict[str, Any]] = {}

        async def both_listed() -> bool:
            response = await client.get("/workers")
            assert response.status_code == 200, response.text
            by_pid.clear()
            by_pid.update({w["pid"]: w for w in response.json()})
            return {with_acme.proc.pid, plain.proc.pid} <= by_pid.keys()

        await wait_for(both_listed, 60, "both workers in GET /workers")
        user_tasks = acme_task_names()
        assert len(user_tasks) >= 5
        acme_tasks, plain_tasks = (set(by_pid[p.proc.pid]["tasks"]) for p in (with_acme, plain))
        builtins = {"send_email", "generate_report", "call_webhook", "debug.noop"}
        assert user_tasks | builtins <= acme_tasks
        assert builtins <= plain_tasks
        assert not plain_tasks & user_tasks
        assert acme_tasks - plain_tasks == user_tasks  # the user's tasks are the only difference
        schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["WorkerInfo"]
        assert schema["properties"]["tasks"]["type"] == "array"


async def test_a_registry_entry_without_tasks_reads_as_empty(
    redis_url: str, prefix: str, taskq: Taskq
) -> None:
    """A worker of the previous version writes no ``tasks`` field: it reads as an empty list, not a 500
    (a rolling deploy runs both versions at once)."""
    await beat(taskq, WorkerBeat("old-1", "h", 1, 1, 1, ("default",), ()), 60_000)
    await taskq.redis.hdel(taskq.keys.worker("old-1"), "tasks")  # as the previous version wrote it
    async with serve(producer_settings(redis_url, prefix)) as client:
        response = await client.get("/workers")
    assert response.status_code == 200, response.text
    assert [(w["id"], w["tasks"]) for w in response.json()] == [("old-1", [])]
