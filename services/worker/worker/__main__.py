"""``python -m worker`` runs a worker; ``python -m worker check`` is its healthcheck;
``python -m worker burst`` runs until the queues are empty, then exits.

``check`` exits 0 iff the worker of this container (its id is in ``$WORKER_STATE_DIR/taskq-worker.id``)
has a fresh heartbeat in Redis, so a worker cut off from Redis, or hung, reports unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable

from taskq import RedisFull, RedisUnavailable, Taskq, Waiter, connect
from taskq.workers import last_beat_ms
from worker.cron import validate_cron
from worker.handlers.report import sweep_reports_forever
from worker.lease import Identity
from worker.logs import setup_logging
from worker.manager import EXIT_JOBS_LEFT_RUNNING, Worker
from worker.settings import WorkerSettings
from worker.state import new_identity, read_worker_id, write_worker_id

log = logging.getLogger("taskq.worker")


async def serve(settings: WorkerSettings, *, burst: bool = False, identity: Identity | None = None) -> int:
    if undeclared := settings.undeclared_queues():
        log.error(
            "refusing to start: WORKER_QUEUES or CRON_JOBS name queues that QUEUES does not declare",
            extra={"undeclared": undeclared, "declared": sorted(settings.declared_queues() or ())},
        )
        return 2
    registry = settings.tasks()
    validate_cron(settings.cron(), registry)
    identity = identity or new_identity()
    write_worker_id(settings.worker_state_dir, identity.id)
    redis = connect(settings, max_connections=max(16, settings.worker_concurrency + 4))
    taskq = Taskq.from_settings(redis, settings)
    waiter = Waiter.from_settings(taskq, settings, client_name=f"taskq-wait-{identity.id}")
    worker = Worker(
        settings,
        taskq=taskq,
        waiter=waiter,
        registry=registry,
        identity=identity,
        burst=burst,
    )
    # Report retention runs beside the worker (every worker: REPORTS_DIR may or may not be shared).
    sweeper = asyncio.create_task(sweep_reports_forever(settings.reports_dir, settings.report_ttl_seconds))
    try:
        with_queues = list(settings.queue_names())
        try:
            await taskq.register_queues(with_queues)
        except (RedisUnavailable, RedisFull):
            log.warning("redis unavailable or full at start: the worker will keep trying")
        code = await worker.run()
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await waiter.aclose()
        await redis.aclose()
    if code == EXIT_JOBS_LEFT_RUNNING:
        # A handler thread would not stop. Python's exit waits for pool threads, and meanwhile the
        # job's lease would lapse and another worker run it alongside: end the process (and the
        # thread) now, so the job is handed on only once it has stopped here.
        logging.shutdown()
        os._exit(code)
    return code


async def check(settings: WorkerSettings) -> int:
    worker_id = read_worker_id(settings.worker_state_dir)
    if worker_id is None:
        print("no worker id recorded yet", file=sys.stderr)
        return 1
    redis = connect(settings)
    try:
        last = await last_beat_ms(Taskq.from_settings(redis, settings), worker_id)
    except RedisUnavailable as exc:
        print(f"redis unavailable: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()
    if last is None:
        print(f"worker {worker_id} is not registered", file=sys.stderr)
        return 1
    age = time.time() - last / 1000
    limit = max(3 * settings.heartbeat_seconds, settings.lease_seconds)
    if age > limit:
        print(f"worker {worker_id} last heartbeat {age:.1f}s ago (limit {limit:g}s)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    settings = WorkerSettings()
    if argv[1:2] == ["check"]:
        return asyncio.run(check(settings))
    if argv[1:] not in ([], ["burst"]):
        print("usage: python -m worker [check | burst]", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    # burst: drain the queues, then stop (tests, benchmarks, one-off catch-up runs).
    with asyncio.Runner(loop_factory=loop_factory(settings.worker_event_loop)) as runner:
        return runner.run(serve(settings, burst=argv[1:] == ["burst"]))


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when asked for, or by default when installed: it makes the per-job event-loop work (tasks,
    callbacks, socket writes) markedly cheaper. ``asyncio`` picks the standard loop."""
    if kind == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main(sys.argv))
