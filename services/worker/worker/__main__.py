"""``python -m worker`` runs a worker; ``python -m worker check`` is its healthcheck;
``python -m worker burst`` runs until the queues are empty, then exits.

``check`` exits 0 iff the worker of this container (its id is in ``$WORKER_STATE_DIR/taskq-worker.id``)
has a fresh heartbeat in Redis, so a worker cut off from Redis, or hung, reports unhealthy.

Before anything touches Redis, the worker loads and checks everything it will run: the task modules
(``TASKQ_TASKS``), every handler (imported, its signature checked), the cron jobs and the queues. Any
fault refuses the start: exit 2 and one JSON line on stderr naming the module, the task and the cause,
with no id recorded and no registry entry, so ``check`` never reports it healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from taskq import RedisFull, RedisUnavailable, TaskLoadError, Taskq, TaskqError, TaskRegistry, Waiter, connect
from taskq.logs import JsonFormatter
from taskq.workers import last_beat_ms
from worker.cron import validate_cron
from worker.handlers import Handler, handlers_for
from worker.handlers.report import sweep_reports_forever
from worker.lease import Identity
from worker.logs import setup_logging
from worker.manager import EXIT_JOBS_LEFT_RUNNING, Worker
from worker.settings import WorkerSettings
from worker.state import ID_FILE, new_identity, read_worker_id, write_worker_id

log = logging.getLogger("taskq.worker")

#: The exit code of a worker that refuses to start (its configuration can never run).
EXIT_REFUSED = 2


class Refusal(Exception):
    """The worker must not start: ``message`` and ``fields`` make its one log line."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message, self.fields = message, fields


def load(settings: WorkerSettings) -> tuple[TaskRegistry, dict[str, Handler]]:
    """Everything this worker will run, loaded and checked at once: the task modules, every handler
    (resolved now, not at its first job: the job runner is given these), the cron jobs' tasks and
    args, the queues. Raises ``Refusal``. Runs before anything touches Redis, so a refused worker
    leaves no trace there."""
    try:
        registry = settings.tasks()
        handlers = handlers_for(registry)
    except TaskLoadError as exc:
        # ``tasks_module``, not ``module``: a log record's own ``module`` is the Python module logging.
        raise Refusal(
            "refusing to start: a task cannot be loaded",
            tasks_module=exc.module, task=exc.task, cause=exc.cause, error=str(exc),
        ) from exc  # fmt: skip
    for job in settings.cron():
        try:
            validate_cron((job,), registry)
        except (TaskqError, ValidationError) as exc:
            cause = _validation_text(exc) if isinstance(exc, ValidationError) else str(exc)
            message = "refusing to start: a CRON_JOBS entry cannot run"
            raise Refusal(message, cron_job=job.name, task=job.task, cause=cause) from exc
    if undeclared := settings.undeclared_queues():
        raise Refusal(
            "refusing to start: WORKER_QUEUES or CRON_JOBS name queues that QUEUES does not declare",
            undeclared=undeclared, declared=sorted(settings.declared_queues() or ()),
        )  # fmt: skip
    return registry, handlers


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<args>'}: {e['msg']}" for e in exc.errors())


def refuse(settings: WorkerSettings, refusal: Refusal) -> int:
    """Write the refusal as one JSON line on stderr (not a traceback spread over lines: one event, one
    line, whatever collects the logs) and forget any worker id a previous run of this container left,
    so ``check`` cannot find a live-looking entry and report this worker healthy."""
    record = log.makeRecord(
        log.name, logging.ERROR, __file__, 0, refusal.message, (), None, extra=refusal.fields
    )
    print(JsonFormatter().format(record), file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):
        (settings.worker_state_dir / ID_FILE).unlink(missing_ok=True)
    return EXIT_REFUSED


async def serve(settings: WorkerSettings, *, burst: bool = False, identity: Identity | None = None) -> int:
    try:
        registry, handlers = load(settings)
    except Refusal as refusal:
        return refuse(settings, refusal)
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
        handlers=handlers,
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
