"""Worker fixtures: settings pointing at the session's real Redis under a unique prefix, a worker
running in this process (for behaviours seen from inside), and real ``python -m worker`` processes
(for signals, kills, and several workers at once)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from taskq import Taskq, TaskRegistry, Waiter, connect
from worker.lease import Identity
from worker.manager import Worker
from worker.settings import WorkerSettings
from worker.state import new_identity
from worker.testing import RunningWorker, WorkerProcess, settings_env, worker_settings

#: Seconds a worker has to stop at teardown: above the test settings' 5 s grace, with room to spare.
STOP_TIMEOUT = 20.0


@pytest.fixture
def make_settings(redis_url: str, prefix: str, tmp_path: Path) -> Callable[..., WorkerSettings]:
    def make(**overrides: Any) -> WorkerSettings:
        return worker_settings(redis_url, prefix, tmp_path, **overrides)

    return make


@pytest.fixture
async def client_for(prefix: str) -> AsyncIterator[Callable[[WorkerSettings], Taskq]]:
    opened: list[Redis] = []

    def make(settings: WorkerSettings) -> Taskq:
        redis = connect(settings)
        opened.append(redis)
        return Taskq.from_settings(redis, settings)

    yield make
    for redis in opened:
        await redis.aclose()


@pytest.fixture
async def start_worker() -> AsyncIterator[Callable[..., Awaitable[RunningWorker]]]:
    """Run ``Worker.run`` in this process's event loop (no signal handlers)."""
    running: list[RunningWorker] = []

    async def start(settings: WorkerSettings, identity: Identity | None = None) -> RunningWorker:
        redis = connect(settings)
        taskq = Taskq.from_settings(redis, settings)
        waiter = Waiter.from_settings(taskq, settings)
        worker = Worker(
            settings,
            taskq=taskq,
            waiter=waiter,
            registry=TaskRegistry.load(debug=settings.debug_tasks),
            identity=identity or new_identity(),
        )
        task = asyncio.create_task(worker.run(install_signals=False))
        handle = RunningWorker(worker, task, [redis, waiter])
        running.append(handle)
        return handle

    yield start
    # A worker that crashed, or hangs or fails on stop, fails the test that ran it: every worker must
    # end with exit code 0 (a test that stopped one itself has already awaited it; this re-reads it).
    problems: list[str] = []
    for handle in running:
        if not handle.task.done():
            handle.worker.request_stop()
            handle.worker.request_stop()  # the second stop: hand back whatever is still in hand
            await asyncio.wait({handle.task}, timeout=STOP_TIMEOUT)
        if not handle.task.done():
            handle.task.cancel()
            problems.append(f"worker {handle.worker.id} still running {STOP_TIMEOUT}s after a hard stop")
        elif handle.task.cancelled():
            problems.append(f"worker {handle.worker.id} was cancelled instead of stopping")
        elif (exc := handle.task.exception()) is not None:
            problems.append(f"worker {handle.worker.id} crashed: {exc!r}")
        elif handle.task.result() != 0:
            problems.append(f"worker {handle.worker.id} exited with {handle.task.result()}")
        for client in handle.clients:
            await client.aclose()
    assert not problems, problems


@pytest.fixture
def worker_with(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Callable[..., Awaitable[RunningWorker]],
) -> Callable[..., Awaitable[Taskq]]:
    """Start an in-process worker with these setting overrides; returns a client on the same prefix."""

    async def start(**overrides: Any) -> Taskq:
        settings = make_settings(**overrides)
        await start_worker(settings)
        return client_for(settings)

    return start


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    procs: list[WorkerProcess] = []

    def spawn(settings: WorkerSettings, *args: str, **extra_env: str) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(procs)}.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker", *args],
                env=settings_env(settings, **extra_env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        handle = WorkerProcess(proc, log_path)
        procs.append(handle)
        return handle

    yield spawn
    # Processes a test left running are stopped the way production stops them (SIGTERM) and must
    # exit 0 within the grace: a crash or a hang on stop fails the test. Processes the test ended
    # itself (killed on purpose, or checked already) are the test's business.
    problems: list[str] = []
    for handle in procs:
        # One spawned just now may still be importing: SIGTERM before its handler is installed kills
        # it by default (-15), which is Python's start-up, not the worker's stop. Let it start first.
        deadline = time.monotonic() + STOP_TIMEOUT
        while handle.proc.poll() is None and '"worker started"' not in handle.log():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)  # a child process writing its log: nothing to subscribe to
        if handle.proc.poll() is not None:
            continue
        handle.proc.send_signal(signal.SIGTERM)
        try:
            code = handle.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            handle.proc.kill()
            handle.proc.wait(10)
            problems.append(f"pid {handle.proc.pid} hung on SIGTERM: {handle.log()[-2000:]}")
            continue
        if code != 0:
            problems.append(f"pid {handle.proc.pid} exited {code} on SIGTERM: {handle.log()[-2000:]}")
    assert not problems, problems
