"""``python -m worker`` with a task it cannot run refuses to start: a module that fails to import, two
tasks with one name (across modules, or a built-in's), a name outside the pattern, a handler that does
not take (args, ctx) or whose args are not a ``TaskArgs`` model, an isolated ``async def``, a handler
path that does not resolve, a cron job whose task is missing. Each: exit 2, exactly one line on stderr,
a JSON object at level error naming the module, the task and the cause, nothing on stdout, nothing
written to Redis, and the healthcheck red.

Real processes: the refusal is ``__main__``'s, which only a real start exercises. The broken modules
are ``tests/fixtures/acme_tasks/broken_*``, put on the worker's ``PYTHONPATH``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from worker.settings import WorkerSettings
from worker.state import ID_FILE
from worker.testing import settings_env

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass(frozen=True)
class Broken:
    tasks: str  # TASKQ_TASKS
    module: str  # the module the line must name
    task: str | None  # the task it must name (None: the module did not get as far as declaring one)
    cause: str  # a fragment the cause must contain


CASES = {
    "import_error": Broken(
        "acme_tasks.broken_import", "acme_tasks.broken_import", None,
        "No module named 'acme_partner_sdk_not_installed'",
    ),
    "same_name_in_two_modules": Broken(
        "acme_tasks.tasks,acme_tasks.broken_duplicate", "acme_tasks.broken_duplicate", "acme.hello",
        "already declared by module 'acme_tasks.tasks'",
    ),
    "name_of_a_builtin": Broken(
        "acme_tasks.broken_builtin_name", "acme_tasks.broken_builtin_name", "send_email",
        "already declared by module 'taskq.builtin_tasks'",
    ),
    "name_outside_the_pattern": Broken(
        "acme_tasks.broken_name", "acme_tasks.broken_name", "acme thumbnail!",
        "a task name is 1-100 characters",
    ),
    "handler_not_args_ctx": Broken(
        "acme_tasks.broken_signature", "acme_tasks.broken_signature", "acme.one_param",
        "a handler takes (args, ctx)",
    ),
    "handler_by_path_not_args_ctx": Broken(
        "acme_tasks.broken_handler_signature", "acme_tasks.broken_handler_signature", "acme.three_params",
        "a handler takes (args, ctx)",
    ),
    "args_not_a_task_args_model": Broken(
        "acme_tasks.broken_args_type", "acme_tasks.broken_args_type", "acme.untyped",
        "must be annotated with a taskq.TaskArgs model",
    ),
    "isolated_async_def": Broken(
        "acme_tasks.broken_isolated_async", "acme_tasks.broken_isolated_async", "acme.isolated_async",
        "an isolated handler must be a plain def",
    ),
    "handler_path_unresolvable": Broken(
        "acme_tasks.broken_handler_path", "acme_tasks.broken_handler_path", "acme.nowhere",
        "No module named 'acme_tasks.no_such_module'",
    ),
}  # fmt: skip


def run_worker(settings: WorkerSettings, tasks: str, *args: str) -> subprocess.CompletedProcess[str]:
    pythonpath = os.pathsep.join(p for p in (str(FIXTURES), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=settings_env(settings, TASKQ_TASKS=tasks, PYTHONPATH=pythonpath),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=settings.worker_state_dir.parent,
    )


def the_one_line(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # one line: no traceback spread over the log
    line: dict[str, object] = json.loads(lines[0])
    assert line["level"] == "error"
    assert str(line["msg"]).startswith("refusing to start")
    return line


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_a_task_the_worker_cannot_run_refuses_the_start(
    case: str, make_settings: Callable[..., WorkerSettings], redis: Redis, prefix: str
) -> None:
    broken = CASES[case]
    settings = make_settings()
    result = await asyncio.to_thread(run_worker, settings, broken.tasks)
    line = the_one_line(result)
    assert line["tasks_module"] == broken.module
    assert line["task"] == broken.task
    assert broken.cause in str(line["cause"]), line
    assert await redis.keys(f"{prefix}*") == []  # not registered, nothing claimed, no queue noted


async def test_a_cron_job_naming_a_task_not_loaded_refuses_the_start(
    make_settings: Callable[..., WorkerSettings], redis: Redis, prefix: str
) -> None:
    """CRON_JOBS names acme.hello, but this worker's TASKQ_TASKS does not load it."""
    cron = [{"name": "greet", "schedule": "* * * * *", "task": "acme.hello", "args": {"name": "ada"}}]
    settings = make_settings(cron_jobs=json.dumps(cron))
    line = the_one_line(await asyncio.to_thread(run_worker, settings, ""))
    assert (line["cron_job"], line["task"]) == ("greet", "acme.hello")
    assert "acme.hello" in str(line["cause"])
    assert await redis.keys(f"{prefix}*") == []


async def test_a_refused_worker_is_never_healthy(
    make_settings: Callable[..., WorkerSettings], redis: Redis, prefix: str
) -> None:
    """A container restarting into a refusal may hold the id its last run wrote; the refusal forgets
    it, so ``check`` (the Dockerfile's HEALTHCHECK) cannot find a live-looking worker."""
    settings = make_settings()
    settings.worker_state_dir.mkdir(parents=True)
    (settings.worker_state_dir / ID_FILE).write_text("previous-run-1-abcdef", encoding="utf-8")
    the_one_line(await asyncio.to_thread(run_worker, settings, "acme_tasks.broken_import"))
    assert not (settings.worker_state_dir / ID_FILE).exists()
    check = await asyncio.to_thread(run_worker, settings, "acme_tasks.broken_import", "check")
    assert check.returncode != 0
    assert await redis.keys(f"{prefix}*") == []
