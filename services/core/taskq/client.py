"""``Client``: the one way Python code enqueues and follows taskq jobs, from asyncio code.

It bundles what a producer otherwise wires by hand (settings, a redis-py client, a lean ``Wire`` for
the enqueue path, the task registry) behind one constructor, and enqueues by the declared task, its
args typed by the task's model, or by name::

    async with Client.from_url("redis://127.0.0.1:6379/0", taskq_tasks="myapp.tasks") as client:
        done = await client.enqueue(thumbnail, Thumbnail(image=png, width=128))
        by_name = await client.enqueue("images.thumbnail", {"image": b64, "width": 128})
        job = await client.wait(done.id, timeout=30)
        print(job.status, job.result)

Blocking code (Flask, Django, scripts) uses ``SyncClient`` (``taskq.sync_client``), the same API.
Args are validated here, before anything is written: the job a worker receives always fits its
model. Defaults (queue, priority, attempts, timeout) come from the task (``Task.request``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar, Unpack

from taskq.errors import JobNotFound, redis_errors
from taskq.models import Job, JobStatus
from taskq.queue import Taskq
from taskq.redis_client import connect
from taskq.registry import TaskRegistry
from taskq.results import Enqueued, EnqueueRequest
from taskq.settings import CoreSettings
from taskq.tasks import Task, TaskArgs
from taskq.wire import Wire

A = TypeVar("A", bound=TaskArgs)

#: What ``tasks=`` takes: a registry, or tasks (a ``Tasks`` collection is an iterable of them).
TaskSource = TaskRegistry | Iterable[Task[Any]]


class JobOptions(TypedDict, total=False):
    """``enqueue``'s keyword options; each one left out comes from the task (``Task.request``)."""

    queue: str | None
    priority: int | None
    delay_seconds: float
    max_attempts: int | None
    timeout_seconds: float | None
    idempotency_key: str | None


class TaskLookup:
    """What both clients share: the registry, and turning (task, args, options) into a request."""

    def __init__(self, registry: TaskRegistry) -> None:
        self.registry = registry

    @staticmethod
    def registry_of(settings: CoreSettings, tasks: TaskSource | None) -> TaskRegistry:
        """``tasks`` as a registry; None: the built-ins and the ``TASKQ_TASKS`` modules."""
        if tasks is None:
            return settings.tasks()
        if isinstance(tasks, TaskRegistry):
            return tasks
        return TaskRegistry(("tasks=", task) for task in tasks)

    def request(
        self,
        task: Task[A] | str,
        args: A | Mapping[str, Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> EnqueueRequest:
        """The request ``enqueue`` would write, for ``enqueue_many``. Raises ``UnknownTask`` for a
        name not in the registry, pydantic's ``ValidationError`` for args that do not fit."""
        declared = self.registry.get(task) if isinstance(task, str) else task
        return declared.request(args, **options)


class Client(TaskLookup):
    """asyncio client: ``enqueue``, ``enqueue_many``, ``get_job``, ``wait``, ``cancel``.

    ``fast=False`` sends enqueues through redis-py instead of the lean ``Wire`` connection: for a
    deployment where a plain RESP2 socket is not enough (a proxy or client-side hooks, e.g. tracing,
    that only wrap redis-py). Same writes, same guarantees; about half the single-enqueue rate.
    One client per process and event loop; close it (or use ``async with``) to close its connections.
    """

    def __init__(self, taskq: Taskq, registry: TaskRegistry) -> None:
        super().__init__(registry)
        self.taskq = taskq

    @classmethod
    def from_settings(
        cls, settings: CoreSettings, *, tasks: TaskSource | None = None, fast: bool = True
    ) -> Client:
        wire = Wire.from_settings(settings) if fast else None
        taskq = Taskq.from_settings(connect(settings), settings, wire=wire)
        return cls(taskq, cls.registry_of(settings, tasks))

    @classmethod
    def from_url(
        cls, url: str, *, tasks: TaskSource | None = None, fast: bool = True, **settings: Any
    ) -> Client:
        """``settings`` are ``CoreSettings`` fields (``taskq_prefix="app"``, ``taskq_tasks=...``);
        the others come from the environment, as the services read them."""
        return cls.from_settings(CoreSettings(redis_url=url, **settings), tasks=tasks, fast=fast)

    async def enqueue(
        self,
        task: Task[A] | str,
        args: A | Mapping[str, Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> Enqueued:
        """Enqueue one job of ``task`` (a declared ``Task`` or a registered name); one round trip.

        Raises ``UnknownTask``, pydantic's ``ValidationError`` (nothing written), ``QueueFull``,
        ``QueueNotDeclared``, ``PayloadTooLarge``, ``RedisUnavailable``. With ``idempotency_key``, a
        repeat returns the job the key named (``created=False``)."""
        return (await self.taskq.enqueue_many([self.request(task, args, **options)]))[0]

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """Jobs built with ``client.request(...)`` or ``task.request(...)``, in one round trip (atomic
        per queue)."""
        return await self.taskq.enqueue_many(requests)

    async def get_job(self, job_id: str, queue: str | None = None) -> Job | None:
        return await self.taskq.get_job(job_id, queue)

    async def cancel(self, job_id: str, queue: str | None = None) -> JobStatus:
        """CANCELLED when it was waiting; RUNNING when its worker was asked to stop it. Raises
        ``JobNotFound``, or ``InvalidTransition`` when it already finished."""
        return await self.taskq.cancel(job_id, queue)

    async def wait(self, job_id: str, timeout: float, queue: str | None = None) -> Job:
        """The job once it has finished (succeeded, failed or cancelled). Raises ``TimeoutError``
        after ``timeout`` seconds, ``JobNotFound`` when there is no such job (or it expired).

        Woken by the queue's events channel, as the producer's ``GET /jobs/{id}?wait=``: subscribed
        before each read of the job, so an end between the read and the wait is not missed."""
        job = await self._finished(job_id, queue)
        if job.status.terminal:
            return job
        try:
            async with asyncio.timeout(timeout):
                return await self._follow(job, timeout)
        except TimeoutError:  # the timeout's own: redis_errors turns Redis's into RedisUnavailable
            raise TimeoutError(f"job {job_id} did not finish within {timeout} s") from None

    async def _follow(self, job: Job, timeout: float) -> Job:
        async with redis_errors():
            pubsub = self.taskq.redis.pubsub()
            try:
                await pubsub.subscribe(self.taskq.queue_keys(job.queue).events)
                # An explicit read timeout: the pool's command timeout would end a quiet wait.
                while not _subscribed(await pubsub.get_message(timeout=timeout)):
                    pass  # only once Redis confirms can no event be missed
                while True:
                    job = await self._finished(job.id, job.queue)
                    if job.status.terminal:
                        return job
                    while not _names(await pubsub.get_message(timeout=timeout), job.id):
                        pass
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _finished(self, job_id: str, queue: str | None) -> Job:
        job = await self.taskq.get_job(job_id, queue)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def close(self) -> None:
        """Close every connection (the pool's and the wire's); calls after this reconnect."""
        if self.taskq.wire is not None:
            self.taskq.wire.close()
        await self.taskq.redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _subscribed(message: Mapping[str, Any] | None) -> bool:
    return message is not None and message.get("type") == "subscribe"


def _names(message: Mapping[str, Any] | None, job_id: str) -> bool:
    """Whether an events message names ``job_id`` (one '<id> <status>' line per job that ended)."""
    if message is None or message.get("type") != "message":
        return False
    data = message["data"]
    return any(line.split(b" ", 1)[0].decode() == job_id for line in data.splitlines())


__all__ = ["Client", "JobOptions", "TaskLookup", "TaskSource"]
