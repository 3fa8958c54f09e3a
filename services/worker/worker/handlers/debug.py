"""debug.* tasks (registered only with DEBUG_TASKS=1): the tests' and benchmarks' tools."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskq import NonRetryableError
from taskq.builtin_tasks import (
    CrashArgs,
    FailArgs,
    HoldArgs,
    NoopArgs,
    RecordArgs,
    SleepArgs,
    SpinArgs,
    StepsArgs,
)
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
        ctx.progress(0, "sleeping")
    await asyncio.sleep(args.seconds)
    return args.tag if args.tag is not None else args.seconds


async def steps(args: StepsArgs, ctx: JobContext) -> Any:
    """A progress bar to watch: progress after each step, step_seconds apart."""
    for step in range(1, args.steps + 1):
        await asyncio.sleep(args.step_seconds)
        ctx.progress(100 * step / args.steps, f"step {step} of {args.steps}")
    return args.steps


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


#: debug.record's ledger: one file per worker process (no two writers share a file), one JSON line per
#: execution, in DEBUG_LEDGER_DIR. The chaos checker (e2e.chaos) reads every file of the directory.
RECORD_LEDGER_PREFIX = "ledger-"


async def record(args: RecordArgs, ctx: JobContext) -> Any:
    """Sleep, then record this execution, then fail while ``attempt <= fail_attempts``.

    The line is written and fsynced *before* the handler returns, so before the worker acks: an
    accepted job with no "ok" line was never completed, whatever Redis later says (that is a loss);
    two "ok" lines for one tag are a duplicate execution."""
    if args.sleep_ms:
        await asyncio.sleep(args.sleep_ms / 1000)
    failing = ctx.attempt <= args.fail_attempts
    line = {
        "tag": args.tag,
        "job": ctx.job_id,
        "attempt": ctx.attempt,
        "event": "fail" if failing else "ok",
        "worker": socket.gethostname(),
        "at": round(time.time(), 6),
    }
    directory = ctx.settings.debug_ledger_dir or ctx.settings.worker_state_dir
    # A thread: fsync can take milliseconds and must not stall the event loop (heartbeats).
    await asyncio.to_thread(_append_synced, directory, json.dumps(line, separators=(",", ":")) + "\n")
    if failing:
        raise DebugFailure(f"debug.record fails attempt {ctx.attempt} of {args.fail_attempts}")
    return args.tag


def _append_synced(directory: Path, line: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{RECORD_LEDGER_PREFIX}{socket.gethostname()}-{os.getpid()}.jsonl"
    # One write(2) of the whole line with O_APPEND, then fsync: a SIGKILL after the write keeps the line
    # (it is in the page cache); only a host crash before the fsync could lose it.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


async def fail(args: FailArgs, ctx: JobContext) -> Any:
    if args.retryable:
        raise DebugFailure(args.message)
    raise DebugPermanentFailure(args.message)


def crash(args: CrashArgs, ctx: JobContext) -> Any:
    # Kills the whole worker process on purpose: the poison-job and SIGKILL scenarios rely on it.
    os._exit(args.exit_code)


def spin(args: SpinArgs, ctx: object) -> Any:
    """Busy-loop in pure Python. Runs in a child process: killable at its timeout, and it cannot starve
    the worker's event loop (the lease thread is the second line of defence)."""
    deadline = time.monotonic() + args.seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return n
