"""debug.* tasks (registered only with DEBUG_TASKS=1): the tests' and benchmarks' tools."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from taskq import NonRetryableError
from taskq.tasks import CrashArgs, FailArgs, NoopArgs, SleepArgs, SpinArgs
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
