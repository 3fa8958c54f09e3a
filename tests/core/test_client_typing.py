"""``client.enqueue(task, Model(...))`` is typed by the task's args model: ``mypy --strict`` accepts a
user module that passes the task's own model and refuses one that passes another model."""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

USER_MODULE = """
from pydantic import Field
from taskq import Client, JobContext, SyncClient, TaskArgs, Tasks

tasks = Tasks()

class Thumbnail(TaskArgs):
    width: int = Field(gt=0, le=4096)

class Invoice(TaskArgs):
    number: int

@tasks.task("images.thumbnail", queue="images")
def thumbnail(args: Thumbnail, ctx: JobContext) -> dict[str, int]:
    return {"width": args.width}

async def produce(client: Client, sync: SyncClient) -> None:
    await client.enqueue(thumbnail, Thumbnail(width=128), priority=8, delay_seconds=1.5)
    await client.enqueue("images.thumbnail", {"width": 128})
    sync.enqueue(thumbnail, Thumbnail(width=128), idempotency_key="k")
    await client.enqueue_many([thumbnail.request(Thumbnail(width=1)), client.request("x", {})])
"""

WRONG = {
    "another model": "    await client.enqueue(thumbnail, Invoice(number=1))\n",
    "another model, blocking": "    sync.enqueue(thumbnail, Invoice(number=1))\n",
    "a misspelt option": "    await client.enqueue(thumbnail, Thumbnail(width=1), priorty=1)\n",
}


def mypy_strict(tmp_path: Path, source: str) -> tuple[str, int]:
    module = tmp_path / "user_tasks.py"
    module.write_text(source)
    root = Path(__file__).resolve().parents[2]
    out, err, status = api.run(
        ["--strict", "--cache-dir", str(root / ".mypy_cache"),
         "--config-file", str(root / "pyproject.toml"), str(module)]
    )  # fmt: skip
    return out + err, status


def test_the_tasks_own_model_type_checks_and_a_wrong_call_does_not(tmp_path: Path) -> None:
    # One mypy run (they take seconds): the right calls first, then one wrong call per line.
    first = len(USER_MODULE.splitlines()) + 1
    out, status = mypy_strict(tmp_path, USER_MODULE + "".join(WRONG.values()))
    flagged = {int(n) for n in re.findall(r"user_tasks\.py:(\d+): error", out)}
    assert status == 1, out
    assert flagged == set(range(first, first + len(WRONG))), out  # each wrong call, nothing else
