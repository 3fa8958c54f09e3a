"""Scheduled (cron) jobs from ``CRON_JOBS``, fired exactly once per tick across the whole fleet.

Every worker computes the same ticks (the schedule's own times, not its clock's now) and enqueues each
with the idempotency key ``cron:<name>:<tick>``: the enqueue script creates the job for the first
worker and returns the same job to the others. No leader to elect or lose: while any worker runs, every
tick fires once, and the death of the worker that fired the last one changes nothing.

Schedules are UTC cron syntax: 5 fields (minute resolution), or 6 with seconds as the last field.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import UTC, datetime

from croniter import croniter

from taskq import Taskq, TaskqError, TaskRegistry, fingerprint_of
from worker.connection import LAPSED, Outage, RedisState, drop_idle_connections
from worker.settings import CronJob, WorkerSettings

log = logging.getLogger("taskq.worker.cron")


def next_tick(job: CronJob, after: float) -> float:
    return float(croniter(job.schedule, datetime.fromtimestamp(after, UTC)).get_next(float))


def _before_next(job: CronJob, tick: float) -> bool:
    """A tick may still fire while the next one is not yet due."""
    return time.time() < next_tick(job, tick)


def validate_cron(jobs: tuple[CronJob, ...], registry: TaskRegistry) -> None:
    """Fail at start, not at the first tick: the task must exist and its args validate."""
    for job in jobs:
        registry.validate(job.task, job.args)


class CronScheduler:
    def __init__(self, settings: WorkerSettings, taskq: Taskq, state: RedisState) -> None:
        self.jobs = settings.cron()
        self.taskq, self.state = taskq, state
        self.outage = Outage(state, lambda: drop_idle_connections(taskq.redis))

    async def fire(self, job: CronJob, tick: float) -> bool:
        """Enqueue the job of one tick. True if this call created it (False: another worker did)."""
        key = f"cron:{job.name}:{int(tick)}"
        enqueued = await self.taskq.enqueue(
            job.task,
            job.args,
            queue=job.queue,
            priority=job.priority,
            idempotency_key=key,
            fingerprint=fingerprint_of(job.name, str(int(tick))),
        )
        if enqueued.created:
            log.info("cron fired", extra={"cron": job.name, "tick": int(tick), "job_id": enqueued.id})
        return enqueued.created

    async def run(self) -> None:
        now = time.time()
        due = {job.name: next_tick(job, now) for job in self.jobs}
        by_name = {job.name: job for job in self.jobs}
        while True:
            name = min(due, key=due.__getitem__)
            job, tick = by_name[name], due[name]
            wait = tick - time.time()
            if wait > 0:
                await asyncio.sleep(wait)  # a timer until the next tick, not a poll
            try:
                # Unreachable or full (enqueue is refused at maxmemory): retried until the next tick is due.
                fire, window_open = (
                    functools.partial(self.fire, job, tick),
                    functools.partial(_before_next, job, tick),
                )
                fired = await self.outage.retry_while_leased("cron", fire, window_open)
                if fired is LAPSED:
                    log.warning("cron tick missed during an outage", extra={"cron": name, "tick": int(tick)})
            except TaskqError as exc:  # e.g. the queue is full: this tick is lost, say so
                log.error("cron tick not enqueued", extra={"cron": name, "error": str(exc)})
            due[name] = next_tick(job, tick)
