"""``SyncTaskq``: enqueue and read jobs from code that is not asyncio (Flask, Django, scripts, cron).

Same commands, same payloads, same guarantees as ``Taskq``: the planning (payloads, keys, arguments)
and the reading of replies are the command layer's (``taskq.commands``), only the executor differs
(redis-py's blocking client, or a ``SyncWire``). A blocking client also costs less CPU per call than
the asyncio one, so a loop of single enqueues runs faster here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskq.commands import CommandSet, Planner, plain
from taskq.commands.base import text
from taskq.commands.sync_executor import SyncExecutor, SyncRedisExecutor, SyncWireExecutor
from taskq.config import QueueConfig
from taskq.models import Job, job_from_hash
from taskq.results import Enqueued, EnqueueOptions, EnqueueRequest
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
    def __init__(self, client: redis.Redis, config: QueueConfig, *, wire: SyncWire | None = None) -> None:
        self.redis = client
        self.config = config
        self.commands = CommandSet(config)
        self.planner = Planner(config)
        self.executor: SyncExecutor = SyncRedisExecutor(client)
        #: When given, plain enqueues go over this lean connection instead of redis-py's.
        self.wire = wire
        self.fast: SyncExecutor = self.executor if wire is None else SyncWireExecutor(wire)

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
        **options: Unpack[EnqueueOptions],
    ) -> Enqueued:
        req = EnqueueRequest(task, args or {}, **options)
        return self.enqueue_many([req])[0]

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """As ``Taskq.enqueue_many``: atomic per queue, all queues in one round trip."""
        batch = self.planner.prepare(requests, lambda queue: self.commands[queue].enqueue)
        if len(batch.calls) > 1 and self.config.max_depth > 0:
            keys = (self.commands[queue].keys for queue in batch.by_queue)
            self.planner.refuse_overflow(
                batch.by_queue, self.executor.run_many(self.planner.depth_calls(keys))
            )
        # The registry before the jobs, as Taskq does (a job outside it is not found by id).
        if new_queues := self.planner.unregistered(batch.by_queue):
            self.executor.run(self.planner.register(new_queues))
            self.planner.registered(new_queues)
        if batch.plain is not None:
            self.fast.transaction(batch.plain)
            return batch.collect(())
        if len(batch.calls) == 1:
            return batch.collect([self.fast.run(batch.calls[0])])
        return batch.collect(self.executor.run_many(batch.calls))

    def get_job(self, job_id: str, queue: str | None = None) -> Job | None:
        names: Sequence[str] | None = [queue] if queue else self.planner.declared_sorted()
        if names is None:  # QUEUES=*: every queue of the registry
            names = sorted(text(m) for m in self.executor.run(plain("SMEMBERS", self.commands.keys.queues)))
        if not names:
            return None
        found = self.executor.run_many(
            [plain("HGETALL", self.commands[name].keys.job(job_id)) for name in names]
        )
        for name, fields in zip(names, found, strict=True):
            if fields:
                return job_from_hash(job_id, name, {text(k): v for k, v in fields.items()})
        return None
