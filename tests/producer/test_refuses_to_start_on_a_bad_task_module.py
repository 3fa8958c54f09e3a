"""``python -m producer`` with a ``TASKQ_TASKS`` module that does not load refuses to start: a non-zero
exit, exactly one JSON log line (level error) naming the module, the task and the cause, and the port
never bound, so the container's healthcheck can never turn green.

Real processes: the refusal happens in ``__main__`` before uvicorn, which only a real start exercises.
The broken modules are written per test into a directory put on the child's ``PYTHONPATH``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from taskq.localserver import LocalRedis, free_port

#: Starting Python and importing the app takes a second alone; on a shared, loaded machine (two
#: cores, load 15+) two uvicorn worker processes took 25 s. Bounded, and generous on purpose.
START_SECONDS = 90

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

_ARGS = """
from pydantic import BaseModel
from taskq import TaskArgs, Tasks

tasks = Tasks()

class Args(TaskArgs):
    n: int = 1

class NotTaskArgs(BaseModel):
    n: int = 1
"""


@dataclass(frozen=True)
class Broken:
    source: str
    task: str | None
    cause: str  # a fragment the cause must contain


BROKEN = {
    "import_error": Broken(
        "import acme_sdk_not_installed\n" + _ARGS, None, "No module named 'acme_sdk_not_installed'"
    ),
    "same_name_in_one_module": Broken(
        _ARGS + 'tasks.declare("acme.twice", Args, handler="x:y")\n'
        'tasks.declare("acme.twice", Args, handler="x:z")\n',
        "acme.twice",
        "declared twice",
    ),
    "name_of_a_builtin": Broken(
        _ARGS + 'tasks.declare("send_email", Args, handler="x:y")\n',
        "send_email",
        "already declared by module 'taskq.builtin_tasks'",
    ),
    "name_outside_the_pattern": Broken(
        _ARGS + 'tasks.declare("acme thumbnail!", Args, handler="x:y")\n',
        "acme thumbnail!",
        "a task name is 1-100 characters",
    ),
    "args_model_not_task_args": Broken(
        _ARGS + 'tasks.declare("acme.plain", NotTaskArgs, handler="x:y")\n',
        "acme.plain",
        "is not a taskq.TaskArgs subclass",
    ),
}


def _env(redis_url: str, prefix: str, port: int, tasks: str, *paths: Path) -> dict[str, str]:
    pythonpath = os.pathsep.join([*map(str, paths), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {
        **os.environ,
        "API_HOST": "127.0.0.1", "API_PORT": str(port), "REDIS_URL": redis_url, "TASKQ_PREFIX": prefix,
        "ENVIRONMENT": "test", "TASKQ_TASKS": tasks, "PYTHONPATH": pythonpath,
    }  # fmt: skip


def _started(log: Path) -> int:
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return sum(line.get("msg", "").startswith("Started server process") for line in lines)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_refuses_to_start_with_one_line_naming_module_task_and_cause(
    case: str, redis_server: LocalRedis, prefix: str, tmp_path: Path
) -> None:
    broken = BROKEN[case]
    module = f"acme_broken_{case}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(broken.source))
    port = free_port()
    env = _env(redis_server.url, prefix, port, f"acme_contract.contract,{module}", FIXTURES, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    answered = False
    deadline = time.monotonic() + START_SECONDS
    try:
        # Probe the port for as long as the process lives: it must never accept a connection.
        while True:
            answered = answered or _answers(port)
            try:
                proc.wait(timeout=0.05)  # the output is one line: no pipe can fill meanwhile
                break
            except subprocess.TimeoutExpired:
                assert time.monotonic() < deadline, "the producer neither refused nor stopped"
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode not in (0, None)
    assert not answered, "the port was bound: a healthcheck could pass"
    assert out == b""
    lines = err.decode().splitlines()
    assert len(lines) == 1, err.decode()
    line = json.loads(lines[0])
    assert line["level"] == "error"
    assert line["tasks_module"] == module
    assert line["task"] == broken.task
    assert broken.cause in line["cause"]
    assert "traceback" not in line


@pytest.mark.parametrize("api_workers", [1, 2])
def test_a_good_module_list_starts_and_serves_its_tasks(
    redis_server: LocalRedis, prefix: str, tmp_path: Path, api_workers: int
) -> None:
    """The control: the same harness with loadable modules sees the port answer (so the refusals above
    are refusals, not a harness that never could have connected). With API_WORKERS=2 each uvicorn
    worker process imports the modules again, and serves them."""
    port = free_port()
    env = _env(redis_server.url, prefix, port, "acme_contract.contract", FIXTURES)
    env["API_WORKERS"] = str(api_workers)
    log = (tmp_path / "producer.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "producer"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(port):
            assert proc.poll() is None, (tmp_path / "producer.log").read_text()
            assert time.monotonic() < deadline, "producer did not start"
            time.sleep(0.05)  # a child binding its port: nothing to subscribe to
        names = [t["name"] for t in httpx.get(f"http://127.0.0.1:{port}/tasks", timeout=5).json()]
        assert {"acme.sync_invoice", "acme.ping", "send_email"} <= set(names)
        # uvicorn logs "Started server process" after its app factory ran: every worker process got
        # as far as building the app with the modules loaded.
        while _started(tmp_path / "producer.log") < api_workers:
            assert proc.poll() is None, (tmp_path / "producer.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "producer.log").read_text()
            time.sleep(0.05)  # a child's log line: nothing to subscribe to
    finally:
        # SIGTERM, not SIGKILL: uvicorn's supervisor stops its worker processes only on a signal it handles.
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
