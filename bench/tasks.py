"""The benchmarks' own tasks, loaded by the worker through ``TASKQ_TASKS=bench.tasks``.

``bench.email`` has the three plain string fields of the peers' ``send_email`` (Dramatiq's actor takes
them as keyword arguments, unchecked), so an enqueue rate compares like with like: our model is built
and checked per call, but no email-address parsing is added on our side only.

``bench.stamp`` records when its handler started (``time.perf_counter_ns``: CLOCK_MONOTONIC, one
clock for every process on the host) and pushes ``"<t0> <started>"`` to a Redis list, where the
enqueuing process reads it; the push comes after the stamp, so it is outside the measured interval.
"""

from __future__ import annotations

import os
import time

from redis.asyncio import Redis

from taskq import JobContext, TaskArgs, Tasks

#: The list ``bench.stamp`` pushes to (the taskiq peer's handler pushes to its own).
STAMPS = "bench:stamps"

tasks = Tasks()


class Email(TaskArgs):
    recipient_email: str
    subject: str
    body: str


class Stamp(TaskArgs):
    t0: int  # perf_counter_ns() just before the enqueue call


@tasks.task("bench.email")
async def email(args: Email, ctx: JobContext) -> None:
    return None


_redis: Redis | None = None


@tasks.task("bench.stamp", max_attempts=1)
async def stamp(args: Stamp, ctx: JobContext) -> None:
    started = time.perf_counter_ns()
    global _redis
    if _redis is None:
        _redis = Redis.from_url(os.environ["REDIS_URL"])
    await _redis.lpush(STAMPS, f"{args.t0} {started}")
