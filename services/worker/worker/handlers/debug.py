"""debug.* tasks (registered only with DEBUG_TASKS=1): the tests' and benchmarks' tools."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskq import NonRetryableError
from taskq.tasks import CrashArgs, FailArgs, HoldArgs, NoopArgs, SleepArgs, SpinArgs
from worker.context import JobContext


class DebugFailure(RuntimeError):
    """What debug.fail raises (retryable)."""


class DebugPermanentFailure(NonRetryableError):
    """What debug.fail raises with retryable=false."""


async def noop(args: NoopArgs, ctx: JobContext) -> Any:
    return args.tag


async def sleep(args: SleepArgs, ctx: JobContext) -> Any:
    if args.seconds >= 2:
        # Long sleeps say where they are, so progress can be seen end to end.
        await ctx.progress(0, "sleeping")
    await asyncio.sleep(args.seconds)
    return args.tag if args.tag is not None else args.seconds


#: debug.hold's ledger, in WORKER_STATE_DIR: every execution's start and end, written by the handler
#: itself, so a test counts executions in a record that no Redis fault can touch.
LEDGER = "debug-hold-ledger.txt"


@dataclass(frozen=True, slots=True)
class LedgerLine:
    job_id: str
    attempt: int
    event: str  # "start" or "end"
    at: float  # time.time()
    pid: int


def hold(args: HoldArgs, ctx: JobContext) -> Any:
    """Block a worker thread (an uninterruptible handler, like a blocking SMTP send) for a while."""
    _record(ctx, "start")
    time.sleep(args.seconds)
    _record(ctx, "end")
    return args.tag


def _record(ctx: JobContext, event: str) -> None:
    line = f"{ctx.job_id} {ctx.attempt} {event} {time.time():.6f} {os.getpid()}\n"
    ctx.settings.worker_state_dir.mkdir(parents=True, exist_ok=True)
    # One short write in append mode: lines from several workers never interleave.
    with (ctx.settings.worker_state_dir / LEDGER).open("a", encoding="utf-8") as out:
        out.write(line)


def read_ledger(state_dir: Path) -> list[LedgerLine]:
    path = state_dir / LEDGER
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [LedgerLine(r[0], int(r[1]), r[2], float(r[3]), int(r[4])) for r in rows]


async def fail(args: FailArgs, ctx: JobContext) -> Any:
    if args.retryable:
        raise DebugFailure(args.message)
    raise DebugPermanentFailure(args.message)


def crash(args: CrashArgs, ctx: JobContext) -> Any:
    # Kills the whole worker process on purpose: the poison-job and SIGKILL scenarios rely on it.
    os._exit(args.exit_code)


def spin(args: SpinArgs) -> Any:
    """Busy-loop in pure Python. Runs in a child process: killable at its timeout, and it cannot starve
    the worker's event loop (the lease thread is the second line of defence)."""
    deadline = time.monotonic() + args.seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return n
