"""``SyncClient``: ``taskq.Client`` for blocking code (Flask, Django, scripts, cron), same API::

    with SyncClient.from_url("redis://127.0.0.1:6379/0", taskq_tasks="myapp.tasks") as client:
        done = client.enqueue(thumbnail, Thumbnail(image=png, width=128))
        by_name = client.enqueue("images.thumbnail", {"image": b64, "width": 128})
        job = client.wait(done.id, timeout=30)
        print(job.status, job.result)

Thread-safe: redis-py's pool serves reads; enqueues take a lean ``SyncWire`` from a small pool
(one per thread enqueuing at the same moment; a ``SyncWire`` is a socket, not shareable).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

from taskq.client import A, JobOptions, TaskLookup, TaskSource, _names, _subscribed
from taskq.commands.base import Call
from taskq.commands.sync_executor import SyncWireExecutor
from taskq.config import QueueConfig
from taskq.errors import JobNotFound, redis_errors
from taskq.models import Job, JobStatus
from taskq.registry import TaskRegistry
from taskq.results import Enqueued, EnqueueRequest
from taskq.settings import CoreSettings
from taskq.sync import SyncTaskq, connect_sync
from taskq.tasks import Task
from taskq.wire import SyncWire

T = TypeVar("T")


class WirePool:
    """``SyncWire`` executors for ``SyncTaskq.fast``, one per concurrent caller, kept for reuse.

    list.pop and list.append are atomic (the GIL), so taking and giving back needs no lock; after
    ``close`` a wire given back is closed instead of kept."""

    def __init__(self, make: Callable[[], SyncWire]) -> None:
        self._make = make
        self._idle: list[SyncWireExecutor] = []
        self._closed = False

    def _take(self) -> SyncWireExecutor:
        try:
            return self._idle.pop()
        except IndexError:
            return SyncWireExecutor(self._make())

    def _give(self, executor: SyncWireExecutor) -> None:
        if self._closed:
            executor.wire.close()
        else:
            self._idle.append(executor)

    # Each method takes and gives back inline, not through a helper taking a closure: one call and
    # one closure fewer on every enqueue.
    def run(self, call: Call[T]) -> T:
        executor = self._take()
        try:
            return executor.run(call)
        finally:
            self._give(executor)

    def run_many(self, calls: Sequence[Call[Any]]) -> list[Any]:
        executor = self._take()
        try:
            return executor.run_many(calls)
        finally:
            self._give(executor)

    def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        executor = self._take()
        try:
            return executor.transaction(commands)
        finally:
            self._give(executor)

    def close(self) -> None:
        """Close the idle wires; those in use close when given back. Usable again after it."""
        self._closed = True
        while self._idle:
            self._idle.pop().wire.close()
        self._closed = False


class SyncClient(TaskLookup):
    """Blocking client: ``enqueue``, ``enqueue_many``, ``get_job``, ``wait``, ``cancel``.

    ``fast=False``: enqueues through redis-py instead of the lean wires, as ``Client``'s."""

    def __init__(self, taskq: SyncTaskq, registry: TaskRegistry, wires: WirePool | None = None) -> None:
        super().__init__(registry)
        self.taskq = taskq
        self.wires = wires
        if wires is not None:
            taskq.fast = wires

    @classmethod
    def from_settings(
        cls, settings: CoreSettings, *, tasks: TaskSource | None = None, fast: bool = True
    ) -> SyncClient:
        taskq = SyncTaskq(connect_sync(settings), QueueConfig.from_settings(settings))
        wires = WirePool(lambda: SyncWire.from_settings(settings)) if fast else None
        return cls(taskq, cls.registry_of(settings, tasks), wires)

    @classmethod
    def from_url(
        cls, url: str, *, tasks: TaskSource | None = None, fast: bool = True, **settings: Any
    ) -> SyncClient:
        """As ``Client.from_url``."""
        return cls.from_settings(CoreSettings(redis_url=url, **settings), tasks=tasks, fast=fast)

    def enqueue(
        self,
        task: Task[A] | str,
        args: A | Mapping[str, Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> Enqueued:
        """As ``Client.enqueue``, blocking."""
        return self.taskq.enqueue_many([self.request(task, args, **options)])[0]

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        return self.taskq.enqueue_many(requests)

    def get_job(self, job_id: str, queue: str | None = None) -> Job | None:
        return self.taskq.get_job(job_id, queue)

    def cancel(self, job_id: str, queue: str | None = None) -> JobStatus:
        """As ``Client.cancel``."""
        job = self._found(job_id, queue)
        return self.taskq.executor.run(self.taskq.commands[job.queue].cancel(job_id))

    def wait(self, job_id: str, timeout: float, queue: str | None = None) -> Job:
        """As ``Client.wait``, blocking."""
        job = self._found(job_id, queue)
        if job.status.terminal:
            return job
        with redis_errors():
            finished = self._follow(job, time.monotonic() + timeout)
        if finished is None:
            raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
        return finished

    def _follow(self, job: Job, deadline: float) -> Job | None:
        pubsub = self.taskq.redis.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.taskq.commands[job.queue].keys.events)
            while not _subscribed(pubsub.get_message(timeout=_left(deadline))):
                if _left(deadline) == 0:
                    return None  # only once Redis confirms can no event be missed
            while True:
                job = self._found(job.id, job.queue)
                if job.status.terminal:
                    return job
                while not _names(pubsub.get_message(timeout=_left(deadline)), job.id):
                    if _left(deadline) == 0:
                        return None
        finally:
            pubsub.close()

    def _found(self, job_id: str, queue: str | None) -> Job:
        job = self.taskq.get_job(job_id, queue)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def close(self) -> None:
        """Close every connection (the pool's and the wires'); calls after this reconnect."""
        if self.wires is not None:
            self.wires.close()
        self.taskq.redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


__all__ = ["SyncClient", "WirePool"]
