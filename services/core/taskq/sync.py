"""``SyncTaskq``: enqueue and read jobs from code that is not asyncio (Flask, Django, scripts, cron).

Same scripts, same payloads, same guarantees as ``Taskq``, over redis-py's blocking client: the
planning (payloads, keys, arguments) and the reading of replies are ``Taskq``'s own, only the I/O
differs. A blocking client also costs less CPU per call than the asyncio one, so a loop of single
enqueues runs faster here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskq.models import Job, job_from_hash
from taskq.queue import Enqueued, EnqueueRequest, QueueConfig, Taskq, exec_results, redis_errors
from taskq.settings import CoreSettings
from taskq.wire import SyncWire


def connect_sync(settings: CoreSettings, *, max_connections: int = 64) -> redis.Redis:
    """A blocking client with the same timeouts and retry-on-dead-connection as ``connect``."""
    return redis.Redis.from_url(
        settings.redis_dsn(),
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,)),
        max_connections=max_connections,
        client_name="taskq",
    )


class SyncTaskq:
    def __init__(
        self, client: redis.Redis, config: QueueConfig | None = None, *, wire: SyncWire | None = None
    ) -> None:
        self.redis = client
        # Scripts registered on the blocking client: Taskq plans, this class does the I/O.
        self._plan = Taskq(cast(Any, client), config)
        self.config = self._plan.config
        #: When given, plain enqueues go over this lean connection instead of redis-py's.
        self.wire = wire

    @classmethod
    def from_settings(
        cls, client: redis.Redis, settings: CoreSettings, *, wire: SyncWire | None = None
    ) -> SyncTaskq:
        return cls(client, QueueConfig.from_settings(settings), wire=wire)

    def close(self) -> None:
        """Close the lean connection, if any (the redis-py client is the caller's)."""
        if self.wire is not None:
            self.wire.close()

    def enqueue(
        self,
        task: str,
        args: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
        priority: int = 5,
        delay_ms: int = 0,
        max_attempts: int | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Enqueued:
        req = EnqueueRequest(
            task, args or {}, queue, priority, delay_ms, max_attempts, timeout, idempotency_key, fingerprint
        )
        return self.enqueue_many([req])[0]

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """As ``Taskq.enqueue_many``: atomic per queue, all queues in one round trip."""
        batch = self._plan.prepare_enqueue(requests)
        with redis_errors():
            if len(batch.calls) > 1 and self.config.max_depth > 0:
                self._check_depths(batch.by_queue)
            # The registry before the jobs, as Taskq does (a job outside it is not found by id).
            if new_queues := self._plan.unregistered(batch.by_queue):
                self.redis.sadd(self._plan.keys.queues, *new_queues)
                self._plan._known_queues.update(new_queues)
            if batch.plain is not None:
                replies: list[Any] = [self._transaction(batch.plain)]
            elif len(batch.calls) == 1:
                script, keys, args = batch.calls[0]
                replies = [script(keys=keys, args=args)]
            else:
                pipe = self.redis.pipeline(transaction=False)
                for script, keys, args in batch.calls:
                    script(keys=keys, args=args, client=pipe)
                replies = pipe.execute(raise_on_error=False)
        return self._plan.collect_enqueued(batch, replies)

    def _transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        if self.wire is not None:
            return exec_results(self.wire.execute(("MULTI",), *commands, ("EXEC",)))
        pipe = self.redis.pipeline(transaction=True)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return list(pipe.execute())

    def _check_depths(self, by_queue: Mapping[str, Sequence[object]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for queue in by_queue:
            qk = self._plan.queue_keys(queue)
            pipe.zcard(qk.pending)
            pipe.zcard(qk.scheduled)
        self._plan.refuse_overflow(by_queue, pipe.execute())

    def get_job(self, job_id: str, queue: str | None = None) -> Job | None:
        with redis_errors():
            names = [queue] if queue else self._plan.declared_queues()
            if names is None:  # QUEUES=*: every queue of the registry
                members: Any = self.redis.smembers(self._plan.keys.queues)
                names = sorted(bytes(m).decode() for m in members)
            if not names:
                return None
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self._plan.queue_keys(name).job(job_id))
            found = pipe.execute()
        for name, fields in zip(names, found, strict=True):
            if fields:
                return job_from_hash(job_id, name, {k.decode(): v for k, v in fields.items()})
        return None
