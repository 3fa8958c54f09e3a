"""taskq's exceptions, and the small negative integers Lua scripts return for domain failures."""

from __future__ import annotations

import enum

from redis import exceptions as rex


class ScriptCode(enum.IntEnum):
    """Domain outcomes that scripts return instead of raising (one table for every script)."""

    OK = 1
    EXISTING = 2  # enqueue: the idempotency key already named a job
    CANCEL_REQUESTED = 3  # cancel: running job flagged; heartbeat: the flag is set
    NOT_FOUND = -1  # no such job
    STALE_TOKEN = -2  # the lease moved on: this worker no longer holds the job
    WRONG_STATE = -3  # the job is not in a state that allows this change
    QUEUE_FULL = -4  # admission control: the queue is at its maximum depth
    IDEMPOTENCY_CONFLICT = -5  # enqueue: the key already names a job made from a different request


class TaskqError(Exception):
    """Base class of everything taskq raises on purpose."""


class RedisUnavailable(TaskqError):
    """Redis could not be reached or answered in time. Nothing was (or can be known to be) written."""


class RedisFull(TaskqError):
    """Redis refused the write because it is out of memory (maxmemory with noeviction)."""


class PayloadTooLarge(TaskqError, ValueError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"job payload is {size} bytes, the limit is {limit}")
        self.size, self.limit = size, limit


class QueueFull(TaskqError):
    """Admission control: the queue already holds its maximum number of waiting jobs."""

    def __init__(self, queue: str, depth: int, limit: int) -> None:
        super().__init__(f"queue {queue!r} holds {depth} waiting jobs, its limit is {limit}")
        self.queue, self.depth, self.limit = queue, depth, limit


class QueueNotDeclared(TaskqError, ValueError):
    """The queue is not one of the declared queues (``QUEUES``): nothing was written. Names come from
    clients, and every accepted name costs keys, a registry entry and a line in every scrape."""

    def __init__(self, queue: str, accepted: frozenset[str]) -> None:
        names = ", ".join(sorted(accepted))
        super().__init__(f"queue {queue!r} is not declared; accepted: {names}")
        self.queue, self.accepted = queue, accepted


class IdempotencyConflict(TaskqError):
    """The idempotency key already names a job that was created from a different request."""

    def __init__(self, key: str, job_id: str | None = None) -> None:
        job = f" (job {job_id})" if job_id else ""
        super().__init__(f"idempotency key {key!r} was already used for a different request{job}")
        self.key, self.job_id = key, job_id


class JobNotFound(TaskqError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class InvalidTransition(TaskqError):
    """The job exists but is not in a state that allows the change (e.g. cancelling a finished job)."""

    def __init__(self, job_id: str, status: str, action: str) -> None:
        super().__init__(f"cannot {action} job {job_id}: it is {status}")
        self.job_id, self.status, self.action = job_id, status, action


class StaleLease(TaskqError):
    """The worker's fencing token is no longer current: another worker holds (or finished) the job."""


class BadMessage(TaskqError):
    """A stored message is not a valid taskq job (not JSON, wrong schema, unknown version...)."""


class UnknownTask(TaskqError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown task {name!r}")
        self.name = name


class NonRetryableError(Exception):
    """Raise from a handler to dead-letter the job at once, without further attempts."""


def translate(exc: BaseException) -> TaskqError | None:
    """taskq's exception for a redis-py one (None: not a Redis condition, let it through)."""
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError, OSError)):
        return RedisUnavailable(f"Redis unavailable: {type(exc).__name__}")
    if isinstance(exc, rex.ResponseError):
        text = str(exc)
        if text.startswith("OOM") or "maxmemory" in text:
            return RedisFull("Redis is out of memory (maxmemory reached): nothing was written")
        if text.startswith(("NOAUTH", "WRONGPASS")):
            return RedisUnavailable("Redis refused the credentials")
        if text.startswith(("LOADING", "BUSY", "MASTERDOWN", "READONLY")):
            return RedisUnavailable(f"Redis is not ready: {text.split(' ', 1)[0]}")
    return None


class _RedisErrors:
    """Translate redis-py's exceptions into taskq's (a timeout may hide a write that happened).

    A plain class, usable with ``with`` and ``async with``: it wraps every call on the hot path, and
    a generator-based context manager costs several microseconds per use."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None and (translated := translate(exc)) is not None:
            raise translated from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self.__exit__(kind, exc, tb)


_REDIS_ERRORS = _RedisErrors()


def redis_errors() -> _RedisErrors:
    return _REDIS_ERRORS
