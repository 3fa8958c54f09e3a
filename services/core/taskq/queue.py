"""``Taskq``: the typed client every taskq process uses. Thin wrappers over the Lua scripts.

Every method is one round trip to Redis unless it says otherwise. Redis failures surface as
``RedisUnavailable`` (connection refused, timeout) or ``RedisFull`` (OOM under noeviction); domain
outcomes (stale token, not found, wrong state) come back from the scripts as ``ScriptCode`` values.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from taskq.claims import ClaimNonces
from taskq.errors import (
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    QueueFull,
    QueueNotDeclared,
    RedisFull,
    RedisUnavailable,
    ScriptCode,
    TaskqError,
)
from taskq.keys import GlobalKeys, QueueKeys, validate_queue_name
from taskq.models import (
    Ack,
    ClaimedJob,
    Job,
    JobError,
    JobPayload,
    JobStatus,
    QueueStats,
    dumps,
    job_from_hash,
    new_job_id,
    new_job_ids,
)
from taskq.scripts import Scripts
from taskq.settings import CoreSettings, queue_accepted
from taskq.wire import Wire


class PayloadTooLarge(TaskqError, ValueError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"job payload is {size} bytes, the limit is {limit}")
        self.size, self.limit = size, limit


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The numbers the scripts need, in the units they use (ms)."""

    prefix: str = "taskq"
    lease_ms: int = 5_000
    result_ttl_ms: int = 86_400_000
    dead_ttl_ms: int = 7 * 86_400_000
    idempotency_ttl_ms: int = 86_400_000
    max_payload_bytes: int = 256 * 1024
    max_depth: int = 0
    default_max_attempts: int = 3
    default_timeout: float = 300.0
    backoff_base_ms: int = 1_000
    backoff_max_ms: int = 300_000
    #: The queues jobs may name (``CoreSettings.declared_queues``); None accepts any valid name.
    declared: frozenset[str] | None = None

    @classmethod
    def from_settings(cls, s: CoreSettings) -> QueueConfig:
        return cls(
            prefix=s.taskq_prefix,
            lease_ms=int(s.lease_seconds * 1000),
            result_ttl_ms=s.result_ttl_seconds * 1000,
            dead_ttl_ms=s.dead_ttl_seconds * 1000,
            idempotency_ttl_ms=s.idempotency_ttl_seconds * 1000,
            max_payload_bytes=s.max_payload_bytes,
            max_depth=s.queue_max_depth,
            default_max_attempts=s.default_max_attempts,
            default_timeout=s.default_timeout_seconds,
            backoff_base_ms=int(s.retry_backoff_base_seconds * 1000),
            backoff_max_ms=int(s.retry_backoff_max_seconds * 1000),
            declared=s.declared_queues(),
        )

    def backoff_ms(self, attempts: int) -> int:
        """Exponential backoff with full jitter (AWS's "full jitter": spreads a thundering herd)."""
        ceiling = min(self.backoff_max_ms, self.backoff_base_ms * 2 ** max(0, attempts - 1))
        return random.randint(ceiling // 2, ceiling) if ceiling > 0 else 0


@dataclass(frozen=True, slots=True)
class EnqueueRequest:
    task: str
    args: Mapping[str, Any]
    queue: str = "default"
    priority: int = 5
    delay_ms: int = 0
    max_attempts: int | None = None
    timeout: float | None = None
    idempotency_key: str | None = None
    #: Identifies the request behind an idempotency key; a repeat with another fingerprint conflicts.
    #: None: any repeat of the key returns the first job.
    fingerprint: str | None = None
    #: The acceptance time (ms) to record, so a caller can answer with the very timestamps stored.
    created_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class EncodedJob:
    """A request with its payload built and sized (``Taskq.encode``). A batch made of these cannot be
    refused for one job's size: each was refused, alone, before it joined."""

    req: EnqueueRequest
    payload: JobPayload
    text: str


def _req(item: EnqueueRequest | EncodedJob) -> EnqueueRequest:
    return item.req if isinstance(item, EncodedJob) else item


@dataclass(frozen=True, slots=True)
class Enqueued:
    id: str
    created: bool  # False: an idempotent repeat returned the job the key already named


@dataclass(frozen=True, slots=True)
class PreparedEnqueue:
    size: int
    by_queue: dict[str, list[tuple[int, EnqueueRequest, JobPayload, str]]]
    calls: list[tuple[Any, list[Any], list[Any]]]
    #: When the call is plain jobs for one queue (no idempotency key, no delay, no depth limit):
    #: the commands of a MULTI/EXEC that writes them, to be sent instead of ``calls``.
    plain: list[tuple[Any, ...]] | None = None


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    jobs: list[ClaimedJob]
    #: ms until the next scheduled job of the queue is due, None when nothing is scheduled.
    next_due_ms: int | None


@dataclass(frozen=True, slots=True)
class ReapResult:
    ran: bool
    requeued: int
    dead: int


@dataclass(frozen=True, slots=True)
class DeadPage:
    job_ids: list[str]
    next_cursor: str | None


def _translate(exc: BaseException) -> TaskqError | None:
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
        if exc is not None and (translated := _translate(exc)) is not None:
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


def fingerprint_of(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_claimed(queue: str, flat: Sequence[Any], start: int) -> list[ClaimedJob]:
    return [
        ClaimedJob(
            id=_s(flat[i]), queue=queue, token=int(flat[i + 1]), attempts=int(flat[i + 2]), raw=flat[i + 3]
        )
        for i in range(start, len(flat), 4)
    ]


def _job_id(item: EnqueueRequest | EncodedJob, fresh: str) -> str:
    return item.payload.id if isinstance(item, EncodedJob) else fresh


def _stats_of(queue: str, flat: Sequence[Any]) -> QueueStats:
    pending, scheduled, running, dead, now, oldest = (int(v) for v in flat[:6])
    counters = {_s(flat[i]): int(flat[i + 1]) for i in range(6, len(flat), 2)}
    age = None if oldest < 0 else max(0.0, (now - oldest) / 1000)
    return QueueStats(queue, pending, scheduled, running, dead, age, counters)


def _due(value: Any) -> int | None:
    due = int(value)
    return None if due < 0 else due


#: Plain jobs up to this many per call go as one MULTI/EXEC (faster than the script at every size
#: measured, 1,000 included); a bigger batch uses the script, so one call's memory stays bounded.
PLAIN_MAX_JOBS = 1000
#: Pending score: priority band first (9 most urgent sorts first), then ms, as _lib.lua's pending_score.
BAND = 2**42


def pending_score(priority: int, ms: int) -> int:
    return (9 - priority) * BAND + ms


#: A key's request record outlives the queue's own record of it (written a moment later) by this much.
KEY_RECORD_MARGIN_MS = 60_000

#: A streamed plain enqueue writes this many commands at a time; smaller batches go in one write.
STREAM_CHUNK = 128


def _hset(qk: QueueKeys, payload: JobPayload, text: str) -> tuple[Any, ...]:
    """A plain job's hash, as the enqueue script writes it."""
    return ("HSET", qk.job(payload.id), "payload", text, "status", "queued", "priority", payload.priority)


def _plain_tail(qk: QueueKeys, scored: list[Any], n: int) -> list[tuple[Any, ...]]:
    """After the hashes: the pending entries, the wake-up marker (one idle worker wakes, as the
    script does) and the counter."""
    return [("ZADD", qk.pending, *scored), ("ZADD", qk.marker, 0, "m"), ("HINCRBY", qk.stats, "enqueued", n)]


def exec_results(replies: Sequence[Any]) -> list[Any]:
    """The results of a MULTI/.../EXEC sent as one call; the first error is raised. A command
    refused while queueing (a full Redis) made Redis discard the whole transaction."""
    *queued, results = replies
    if isinstance(results, Exception):
        # EXECABORT: the refusal that caused it is among the queueing replies.
        raise next((r for r in queued if isinstance(r, Exception)), results)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return list(results)


class Taskq:
    """All of taskq's Redis operations. One instance per process (it holds the registered scripts)."""

    def __init__(self, redis: Redis, config: QueueConfig | None = None, *, wire: Wire | None = None) -> None:
        self.redis = redis
        self.config = config or QueueConfig()
        self.keys = GlobalKeys(self.config.prefix)
        self.scripts = Scripts.register(redis)
        #: When given, the hot scripts (a single-queue enqueue) run over this lean connection: on a
        #: lone request (an idle producer, the wake-up path) redis-py's own CPU is most of the call.
        self.wire = wire
        self._known_queues: set[str] = set()
        self._queue_keys: dict[str, QueueKeys] = {}
        #: Claims whose reply was lost, to ask again (see taskq.claims).
        self.nonces = ClaimNonces()

    @classmethod
    def from_settings(cls, redis: Redis, settings: CoreSettings, *, wire: Wire | None = None) -> Taskq:
        return cls(redis, QueueConfig.from_settings(settings), wire=wire)

    async def _script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """One script call, over the wire when there is one."""
        if self.wire is None:
            return await script(keys=keys, args=args)
        reply = (await self.on_wire(self.wire, ("EVALSHA", script.sha, len(keys), *keys, *args)))[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def on_wire(self, wire: Wire, *commands: Sequence[Any], timeout: float | None = None) -> list[Any]:
        """``wire.execute`` for calls that end with an EVALSHA: when Redis no longer knows the
        script (NOSCRIPT: a restart emptied its cache), load the scripts and run that one again."""
        replies = await wire.execute(*commands, timeout=timeout)
        if isinstance(replies[-1], NoScriptError):
            await self.scripts.load_all(self.redis)
            replies[-1] = (await wire.execute(commands[-1], timeout=timeout))[0]
        return replies

    def queue_keys(self, queue: str) -> QueueKeys:
        qk = self._queue_keys.get(queue)
        if qk is None:
            if len(self._queue_keys) >= 4096:  # names come from callers: keep the cache bounded
                self._queue_keys.clear()
            qk = self._queue_keys[queue] = self.keys.queue(queue)
        return qk

    # ---------------------------------------------------------------- producing

    def accepts(self, queue: str) -> bool:
        return queue_accepted(self.config.declared, queue)

    def accepted_queue(self, queue: str) -> str:
        """``queue`` if jobs may name it; raises ``ValueError`` (bad name) or ``QueueNotDeclared``.
        Every enqueue path calls this before any I/O (the registry included): nothing is written."""
        validate_queue_name(queue)
        if not queue_accepted(self.config.declared, queue):
            raise QueueNotDeclared(queue, self.config.declared or frozenset())
        return queue

    def build_payload(self, req: EnqueueRequest, job_id: str | None = None) -> JobPayload:
        self.accepted_queue(req.queue)
        if not 0 <= req.priority <= 9:
            raise ValueError("priority must be between 0 and 9")
        created = req.created_at_ms or time.time_ns() // 1_000_000
        return JobPayload(
            id=job_id or new_job_id(),
            task=req.task,
            args=dict(req.args),
            queue=req.queue,
            priority=req.priority,
            max_attempts=req.max_attempts or self.config.default_max_attempts,
            timeout=req.timeout or self.config.default_timeout,
            created_at=created,
            idempotency_key=req.idempotency_key,
            run_at=created + req.delay_ms if req.delay_ms > 0 else None,
        )

    async def enqueue(
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
        return (await self.enqueue_many([req]))[0]

    async def claim_idempotency_key(self, key: str, queue: str, fingerprint: str, delay_ms: int = 0) -> None:
        """Record that ``key`` names this request (its queue and fingerprint), before its jobs are
        written; raise ``IdempotencyConflict`` when it already names another request.

        The enqueue script's records are per queue (a script touches one queue's slot only), so by
        themselves one key could name a different request in each queue. This record is fleet-wide
        (plain commands, its own slot) and comes first: if the process dies, or the script is
        refused, between the two, the record stays without a job, the same request sent again
        passes here and the script creates its job, and any other request under the key is refused.
        It lives as long as the key records the script writes (a delayed job's: until it is due
        plus the TTL), and a margin longer, since it was written first."""
        record = f"{queue} {fingerprint}"
        name = self.keys.idempotency(key)
        ttl = self.config.idempotency_ttl_ms + max(0, delay_ms) + KEY_RECORD_MARGIN_MS
        async with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(name, record, nx=True, px=ttl)
            pipe.get(name)
            _, current = await pipe.execute()
        if current is not None and _s(current) != record:
            raise IdempotencyConflict(key)

    def encode(self, req: EnqueueRequest) -> EncodedJob:
        """Build and size one job's payload now (raises ``PayloadTooLarge``, or ``ValueError`` for a
        bad queue name or priority), so that it can join a batch without failing it."""
        payload, text = self._encoded(req, new_job_id())
        return EncodedJob(req, payload, text)

    async def enqueue_many(self, requests: Sequence[EnqueueRequest | EncodedJob]) -> list[Enqueued]:
        """Enqueue jobs; those of one queue go in one atomic script, all queues in one round trip.

        Raises ``QueueFull`` (nothing of that queue written), ``IdempotencyConflict`` (a key was reused
        for a different request: nothing of that queue written), ``PayloadTooLarge`` before any I/O
        (only for plain requests: an ``EncodedJob`` was sized by ``encode``).
        """
        if self.wire is not None and len(requests) > STREAM_CHUNK and self._is_plain(requests):
            return await self._enqueue_streamed(requests)
        batch = self.prepare_enqueue(requests)
        if len(batch.calls) > 1 and self.config.max_depth > 0:
            await self._check_depths(batch.by_queue)
        await self._register(self.unregistered(batch.by_queue))
        async with redis_errors():
            if batch.plain is not None:
                # The producer's hot path: plain jobs of one queue are one MULTI/EXEC.
                replies: list[Any] = [await self._transaction(batch.plain)]
            elif len(batch.calls) == 1:
                _, keys, args = batch.calls[0]
                replies = [await self._script(self.scripts.enqueue, keys, args)]
            else:
                replies = await self.scripts.run_pipelined(self.redis, batch.calls)
        return self.collect_enqueued(batch, replies)

    def unregistered(self, queues: Iterable[str]) -> list[str]:
        """The queues this process has not yet put in the registry."""
        return [queue for queue in queues if queue not in self._known_queues]

    async def _register(self, new_queues: Sequence[str]) -> None:
        # The queue registry is fleet-wide (not in the queue's hash slot), so it is written outside
        # the script or transaction; once per queue per process is enough. Before the jobs, never
        # after: GET and DELETE /jobs/{id} find a job through the registry, so a job written to a
        # queue that a lost connection kept out of it would answer 404 and still run. A registered
        # queue whose write then failed is only an empty queue in the listing.
        if new_queues:
            async with redis_errors():
                await self.redis.sadd(self.keys.queues, *new_queues)
            if len(self._known_queues) >= 4096:  # only with QUEUES=*: otherwise the declared few
                self._known_queues.clear()
            self._known_queues.update(new_queues)

    async def _enqueue_streamed(self, requests: Sequence[EnqueueRequest | EncodedJob]) -> list[Enqueued]:
        """A big batch of plain jobs for one queue, as one MULTI/EXEC written part by part while the
        later payloads are still being built: Redis parses and queues the first HSETs on the other
        core meanwhile. A payload that fails mid-way (too large, not JSON) sends DISCARD instead of
        EXEC, so nothing is written, and its error is raised."""
        wire = self.wire
        assert wire is not None
        qk = self.queue_keys(self.accepted_queue(_req(requests[0]).queue))
        await self._register(self.unregistered([qk.queue]))
        ids = new_job_ids(len(requests))
        scored: list[Any] = []

        def parts() -> Iterator[list[tuple[Any, ...]]]:
            part: list[tuple[Any, ...]] = [("MULTI",)]
            for item, job_id in zip(requests, ids, strict=True):
                req, payload, text = self._item(item, job_id)
                part.append(_hset(qk, payload, text))
                scored.extend((pending_score(req.priority, payload.created_at), payload.id))
                if len(part) >= STREAM_CHUNK:
                    yield part
                    part = []
            yield [*part, *_plain_tail(qk, scored, len(requests)), ("EXEC",)]

        async with redis_errors():
            exec_results(await wire.execute_streamed(parts(), abort=("DISCARD",)))
        return [
            Enqueued(_job_id(item, job_id), created=True) for item, job_id in zip(requests, ids, strict=True)
        ]

    def prepare_enqueue(self, requests: Sequence[EnqueueRequest | EncodedJob]) -> PreparedEnqueue:
        """Payloads, keys and arguments of an enqueue, grouped by queue (no I/O: shared by the
        asyncio client and the synchronous one)."""
        by_queue: dict[str, list[tuple[int, EnqueueRequest, JobPayload, str]]] = {}
        for index, (item, job_id) in enumerate(zip(requests, new_job_ids(len(requests)), strict=True)):
            req, payload, text = self._item(item, job_id)
            by_queue.setdefault(req.queue, []).append((index, req, payload, text))
        if self._is_plain(requests):
            return PreparedEnqueue(len(requests), by_queue, [], self._plain_commands(by_queue))
        calls: list[tuple[Any, list[Any], list[Any]]] = []
        for queue, items in by_queue.items():
            qk = self.queue_keys(queue)
            keys = [qk.pending, qk.scheduled, qk.marker, qk.stats]
            args: list[Any] = [self.config.idempotency_ttl_ms, self.config.max_depth]
            for _, req, payload, text in items:
                idem = req.idempotency_key
                keys += [qk.job(payload.id), qk.idempotency(idem) if idem else qk.job(payload.id)]
                fp = (req.fingerprint or "*") if idem else ""
                args += [payload.id, text, req.priority, max(0, int(req.delay_ms)), fp]
            calls.append((self.scripts.enqueue, keys, args))
        return PreparedEnqueue(len(requests), by_queue, calls)

    def _item(self, item: EnqueueRequest | EncodedJob, job_id: str) -> tuple[EnqueueRequest, JobPayload, str]:
        """The request, its payload and JSON: as encoded already, or encoded now with ``job_id``."""
        if isinstance(item, EncodedJob):
            return item.req, item.payload, item.text
        return (item, *self._encoded(item, job_id))

    def _encoded(self, req: EnqueueRequest, job_id: str) -> tuple[JobPayload, str]:
        """The job's payload and its JSON, refused when over the size limit."""
        payload = self.build_payload(req, job_id)
        text = payload.to_json()
        limit = self.config.max_payload_bytes
        if len(text) * 4 > limit and (size := len(text.encode())) > limit:  # UTF-8: <= 4 B a char
            raise PayloadTooLarge(size, limit)
        return payload, text

    def _is_plain(self, requests: Sequence[EnqueueRequest | EncodedJob]) -> bool:
        """True when a MULTI/EXEC can write these jobs: one queue, no server-side logic needed (see
        ``_plain_commands``)."""
        if self.config.max_depth > 0 or not requests or len(requests) > PLAIN_MAX_JOBS:
            return False
        queue = _req(requests[0]).queue
        return all(
            (r := _req(item)).queue == queue and not r.idempotency_key and r.delay_ms <= 0
            for item in requests
        )

    def _plain_commands(
        self, by_queue: Mapping[str, Sequence[tuple[int, EnqueueRequest, JobPayload, str]]]
    ) -> list[tuple[Any, ...]]:
        """The MULTI/EXEC body for plain jobs of one queue (``_is_plain``).

        Plain jobs need no logic on the server, and a Lua script is the costliest way to run four
        writes: on a Redis coming out of idle (the wake-up path) the enqueue script took ~100 us,
        the same writes as a transaction about a third of that. A transaction is as atomic here
        (all or nothing, and a full Redis refuses it whole at queueing time). The one difference:
        the pending score takes its millisecond from the payload's ``created_at`` (this process's
        clock) instead of Redis's ``TIME``. That only orders jobs within a priority band, never
        decides a lease or a due time, which stay on Redis's clock.
        """
        ((queue, items),) = by_queue.items()
        qk = self.queue_keys(queue)
        commands: list[tuple[Any, ...]] = []
        scored: list[Any] = []
        for _, req, payload, text in items:
            commands.append(_hset(qk, payload, text))
            scored += [pending_score(req.priority, payload.created_at), payload.id]
        return commands + _plain_tail(qk, scored, len(items))

    async def _transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run ``commands`` in MULTI/EXEC; their results. The first error is raised (a command
        refused while queueing, a full Redis, aborts the whole transaction)."""
        if self.wire is None:
            pipe = self.redis.pipeline(transaction=True)
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())
        return exec_results(await self.wire.execute(("MULTI",), *commands, ("EXEC",)))

    def collect_enqueued(self, batch: PreparedEnqueue, replies: Sequence[Any]) -> list[Enqueued]:
        """The outcome of each request from the scripts' replies."""
        if batch.plain is not None:  # one queue, every job new (errors were raised by the transaction)
            ((_, items),) = batch.by_queue.items()
            return [Enqueued(payload.id, created=True) for _, _, payload, _ in items]
        results: list[Enqueued | None] = [None] * batch.size
        for (queue, items), reply in zip(batch.by_queue.items(), replies, strict=True):
            if isinstance(reply, Exception):
                with redis_errors():
                    raise reply
            code = int(reply[0])
            if code == ScriptCode.QUEUE_FULL:
                raise QueueFull(queue, int(reply[1]), self.config.max_depth)
            if code == ScriptCode.IDEMPOTENCY_CONFLICT:
                raise IdempotencyConflict(items[int(reply[1]) - 1][1].idempotency_key or "", _s(reply[2]))
            if code != ScriptCode.OK:
                raise TaskqError(f"enqueue failed with code {code}")
            for n, (index, _, _, _) in enumerate(items):
                item_code, job_id = int(reply[2 + 3 * n]), _s(reply[3 + 3 * n])
                results[index] = Enqueued(job_id, created=item_code == ScriptCode.OK)
        return [r for r in results if r is not None]

    async def _check_depths(self, by_queue: Mapping[str, Sequence[object]]) -> None:
        """Admission for a batch spanning queues: the per-queue scripts are each all-or-nothing, but
        together they are not, so refuse the batch up front when any queue would overflow. (A race
        with concurrent enqueues can still fill a queue in between; its script then refuses alone.)"""
        async with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for queue in by_queue:
                qk = self.queue_keys(queue)
                pipe.zcard(qk.pending)
                pipe.zcard(qk.scheduled)
            counts = await pipe.execute()
        self.refuse_overflow(by_queue, counts)

    def refuse_overflow(self, by_queue: Mapping[str, Sequence[object]], counts: Sequence[Any]) -> None:
        """Raise ``QueueFull`` if a queue's pending + scheduled counts plus its new jobs pass the limit."""
        for i, (queue, items) in enumerate(by_queue.items()):
            depth = int(counts[2 * i]) + int(counts[2 * i + 1])
            if depth + len(items) > self.config.max_depth:
                raise QueueFull(queue, depth, self.config.max_depth)

    # ---------------------------------------------------------------- consuming

    def claim_command(self, queue: str, worker_id: str, n: int, nonce: str) -> tuple[Any, ...]:
        """The claim as one EVALSHA command (a caller that pipelines it behind a blocking pop)."""
        qk = self.queue_keys(queue)
        return (
            "EVALSHA", self.scripts.claim.sha, 6,
            qk.pending, qk.scheduled, qk.active, qk.marker, qk.token, qk.claim(nonce),
            qk.job_prefix, worker_id, self.config.lease_ms, n, nonce,
        )  # fmt: skip

    async def claim(self, queue: str, worker_id: str, n: int = 1) -> ClaimBatch:
        """Claim up to ``n`` jobs. When an earlier claim of ``queue`` lost its reply, this call asks
        for that claim's jobs instead (possibly more than ``n``, possibly none)."""
        qk = self.queue_keys(queue)
        nonce = self.nonces.take(queue)
        try:
            async with redis_errors():
                flat = await self.scripts.claim(
                    keys=[qk.pending, qk.scheduled, qk.active, qk.marker, qk.token, qk.claim(nonce)],
                    args=[qk.job_prefix, worker_id, self.config.lease_ms, n, nonce],
                )
        except BaseException:
            # A timeout, a dropped connection, a cancel: the claim may have run. Ask again next time.
            self.nonces.doubt(queue, nonce)
            raise
        return ClaimBatch(_parse_claimed(queue, flat, 1), _due(flat[0]))

    async def recover_claims(self, worker_id: str) -> list[ClaimedJob]:
        """The jobs of every claim whose reply was lost and not yet asked again (a stopping worker
        hands them back, so they cost no attempt and wait for no lease)."""
        jobs: list[ClaimedJob] = []
        for queue in self.nonces.queues():
            while queue in self.nonces.queues():
                jobs += (await self.claim(queue, worker_id, 0)).jobs
        return jobs

    async def heartbeat(
        self,
        held: Mapping[str, Sequence[tuple[str, int]]],
        also: Callable[[Pipeline], None] | None = None,
    ) -> dict[tuple[str, int], ScriptCode]:
        """Renew every lease in ``held`` (queue -> [(job id, token)]) in one round trip.

        ``also`` may add commands to the same pipeline (the worker's registry entry rides along).
        Returns (job id, token) -> OK, CANCEL_REQUESTED, or STALE_TOKEN (that lease is gone: stop
        that run). Keyed by the lease, not the job: by the time the reply arrives the job may have
        been reaped and claimed again, and "lost" for the old token says nothing about the new run.
        """
        if not any(held.values()) and also is None:
            return {}
        calls: list[tuple[Any, list[Any], list[Any]]] = []
        order: list[Sequence[tuple[str, int]]] = []
        for queue, pairs in held.items():
            if not pairs:
                continue
            qk = self.queue_keys(queue)
            args: list[Any] = [qk.job_prefix, self.config.lease_ms]
            for job_id, token in pairs:
                args += [job_id, token]
            calls.append((self.scripts.heartbeat, [qk.active], args))
            order.append(pairs)
        async with redis_errors():
            replies = await self.scripts.run_pipelined(self.redis, calls, prelude=also)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return {
            (job_id, int(token)): ScriptCode(int(code))
            for leases, codes in zip(order, replies, strict=True)
            for (job_id, token), code in zip(leases, codes, strict=True)
        }

    async def complete(
        self, queue: str, acks: Sequence[Ack], *, worker_id: str = "", claim_next: int = 0
    ) -> tuple[list[bool], ClaimBatch]:
        """Ack finished jobs and, in the same call, claim up to ``claim_next`` more (recoverable as
        ``claim`` is: an earlier claim of ``queue`` whose reply was lost is asked for instead).

        Returns one flag per ack (False: stale token, the ack was refused) and the claimed batch.
        """
        qk = self.queue_keys(queue)
        nonce = self.nonces.take(queue) if claim_next > 0 else "0"
        args: list[Any] = [
            qk.job_prefix,
            self.config.result_ttl_ms,
            qk.events,
            worker_id,
            self.config.lease_ms,
            claim_next,
            len(acks),
            nonce,
        ]
        for ack in acks:
            args += [ack.id, ack.token, "c" if ack.cancelled else "s", ack.result]
        try:
            async with redis_errors():
                flat = await self.scripts.complete(
                    keys=[
                        qk.active,
                        qk.stats,
                        qk.pending,
                        qk.scheduled,
                        qk.marker,
                        qk.token,
                        qk.claim(nonce),
                    ],
                    args=args,
                )
        except BaseException:
            if claim_next > 0:
                self.nonces.doubt(queue, nonce)  # as in claim: the fused claim may have run
            raise
        n = len(acks)
        return [int(c) == ScriptCode.OK for c in flat[:n]], ClaimBatch(
            _parse_claimed(queue, flat, n + 1), _due(flat[n])
        )

    async def fail(
        self,
        queue: str,
        job_id: str,
        token: int,
        error: JobError,
        *,
        retryable: bool = True,
        reason: str = "error",
        attempts: int = 1,
    ) -> JobStatus | None:
        """Record a failed execution: ``SCHEDULED`` (retry after backoff), ``FAILED`` (dead-lettered),
        or ``CANCELLED`` (it would have been retried, but cancellation was requested).

        Returns None when the token is stale (another worker holds the job; nothing was changed).
        """
        qk = self.queue_keys(queue)
        async with redis_errors():
            code, status = await self.scripts.fail(
                keys=[qk.active, qk.scheduled, qk.dead, qk.stats, qk.marker],
                args=[
                    qk.job_prefix,
                    job_id,
                    token,
                    error.model_dump_json(exclude_none=True),
                    "1" if retryable else "0",
                    self.config.backoff_ms(attempts),
                    reason,
                    self.config.dead_ttl_ms,
                    qk.events,
                    self.config.result_ttl_ms,
                ],
            )
        return None if int(code) == ScriptCode.STALE_TOKEN else JobStatus(_s(status))

    async def release(self, queue: str, held: Iterable[tuple[str, int]]) -> int:
        """Hand jobs back without using an attempt (graceful shutdown). Returns how many went back."""
        qk = self.queue_keys(queue)
        args: list[Any] = [qk.job_prefix, self.config.result_ttl_ms, qk.events]
        for job_id, token in held:
            args += [job_id, token]
        if len(args) == 3:
            return 0
        async with redis_errors():
            return int(
                await self.scripts.release(keys=[qk.active, qk.pending, qk.marker, qk.stats], args=args)
            )

    async def set_progress(
        self, queue: str, job_id: str, token: int, percent: float, message: str | None = None
    ) -> bool:
        if not 0 <= percent <= 100:
            raise ValueError("percent must be between 0 and 100")
        qk = self.queue_keys(queue)
        doc = dumps({"percent": percent, "message": message})
        async with redis_errors():
            code = await self.scripts.progress(keys=[qk.job(job_id)], args=[token, doc])
        return int(code) == ScriptCode.OK

    # ---------------------------------------------------------------- maintenance

    async def reap(
        self, queue: str, *, limit: int = 1000, lock_seconds: float = 0, owner: str = ""
    ) -> ReapResult:
        """Take back jobs with expired leases. With ``lock_seconds`` it runs at most once per that
        interval across every caller (the others get ``ran=False``)."""
        qk = self.queue_keys(queue)
        lost = JobError(type="WorkerLost", message="the worker stopped heartbeating (lease expired)")
        async with redis_errors():
            ran, requeued, dead = await self.scripts.reap(
                keys=[qk.active, qk.pending, qk.dead, qk.stats, qk.marker, qk.maintenance_lock],
                args=[
                    qk.job_prefix,
                    limit,
                    self.config.dead_ttl_ms,
                    int(lock_seconds * 1000),
                    owner,
                    qk.events,
                    lost.model_dump_json(exclude_none=True),
                    self.config.result_ttl_ms,
                ],
            )
        return ReapResult(bool(ran), int(requeued), int(dead))

    async def promote(self, queue: str, limit: int = 1000) -> int:
        qk = self.queue_keys(queue)
        async with redis_errors():
            moved, _ = await self.scripts.promote(
                keys=[qk.scheduled, qk.pending, qk.marker], args=[qk.job_prefix, limit]
            )
        return int(moved)

    # ---------------------------------------------------------------- inspection and control

    async def queues(self) -> list[str]:
        async with redis_errors():
            members = await self.redis.smembers(self.keys.queues)
        return sorted(_s(m) for m in members)

    async def queue_count(self) -> int:
        """How many queues the registry holds (one O(1) call, whatever their names)."""
        async with redis_errors():
            return int(await self.redis.scard(self.keys.queues))

    async def register_queues(self, queues: Iterable[str]) -> None:
        names = [validate_queue_name(q) for q in queues]
        if names:
            async with redis_errors():
                await self.redis.sadd(self.keys.queues, *names)

    def declared_queues(self) -> list[str] | None:
        """The declared queues, sorted; None with QUEUES=* (any name). A lookup by id without a queue
        hint and a /metrics scrape read these only, so their cost is fixed by configuration, never by
        the names clients once sent (the registry may hold more: queues declared in the past)."""
        declared = self.config.declared
        return None if declared is None else sorted(declared)

    async def find_job_queue(self, job_id: str, queue: str | None = None) -> str | None:
        """Which queue holds ``job_id`` (one pipelined EXISTS per declared queue)."""
        candidates = [queue] if queue else (self.declared_queues() or await self.queues())
        if not candidates:
            return None
        async with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for q in candidates:
                pipe.exists(self.queue_keys(q).job(job_id))
            found = await pipe.execute()
        return next((q for q, hit in zip(candidates, found, strict=True) if hit), None)

    async def job_hash(self, job_id: str, queue: str | None = None) -> tuple[str, dict[str, bytes]] | None:
        """The raw job hash and its queue, or None. One round trip (two with QUEUES=*)."""
        candidates = [queue] if queue else (self.declared_queues() or await self.queues())
        if not candidates:
            return None
        async with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for q in candidates:
                pipe.hgetall(self.queue_keys(q).job(job_id))
            found = await pipe.execute()
        for q, fields in zip(candidates, found, strict=True):
            if fields:
                return q, {_s(k): v for k, v in fields.items()}
        return None

    async def get_job(self, job_id: str, queue: str | None = None) -> Job | None:
        found = await self.job_hash(job_id, queue)
        return None if found is None else job_from_hash(job_id, found[0], found[1])

    async def cancel(self, job_id: str, queue: str | None = None) -> JobStatus:
        """Cancel a job: CANCELLED at once when queued or scheduled; RUNNING when only flagged.

        Raises ``JobNotFound``, or ``InvalidTransition`` when it already finished.
        """
        found = await self.find_job_queue(job_id, queue)
        if found is None:
            raise JobNotFound(job_id)
        qk = self.queue_keys(found)
        async with redis_errors():
            code, status = await self.scripts.cancel(
                keys=[qk.job(job_id), qk.pending, qk.scheduled, qk.stats],
                args=[job_id, self.config.result_ttl_ms, qk.events],
            )
        if int(code) == ScriptCode.NOT_FOUND:
            raise JobNotFound(job_id)
        if int(code) == ScriptCode.WRONG_STATE:
            raise InvalidTransition(job_id, _s(status), "cancel")
        return JobStatus.CANCELLED if int(code) == ScriptCode.OK else JobStatus.RUNNING

    async def stats(self, queue: str) -> QueueStats:
        qk = self.queue_keys(queue)
        async with redis_errors():
            flat = await self.scripts.stats(keys=[qk.pending, qk.scheduled, qk.active, qk.dead, qk.stats])
        return _stats_of(queue, flat)

    async def all_stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        """Stats of ``queues`` (default: the registry), in one round trip."""
        names = await self.queues() if queues is None else list(queues)
        calls: list[tuple[Any, list[Any], list[Any]]] = []
        for q in names:
            qk = self.queue_keys(q)
            calls.append((self.scripts.stats, [qk.pending, qk.scheduled, qk.active, qk.dead, qk.stats], []))
        async with redis_errors():
            replies = await self.scripts.run_pipelined(self.redis, calls) if calls else []
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return [_stats_of(q, flat) for q, flat in zip(names, replies, strict=True)]

    async def dead_letters(self, queue: str, *, limit: int = 50, cursor: str | None = None) -> DeadPage:
        """Dead-lettered job ids, newest first. ``cursor`` is opaque: '<score>:<offset>'."""
        qk = self.queue_keys(queue)
        max_score, offset = "+inf", 0
        if cursor:
            score, _, off = cursor.partition(":")
            max_score, offset = str(int(score)), int(off)
        async with redis_errors():
            rows: list[Any] = await self.redis.zrevrangebyscore(
                qk.dead, max_score, "-inf", start=offset, num=limit + 1, withscores=True
            )
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last_score = int(page[-1][1])
            same = sum(1 for _, s in page if int(s) == last_score)
            # Continue after the rows already seen that share the last score (offset within it).
            carried = offset if cursor and last_score == int(max_score) else 0
            next_cursor = f"{last_score}:{same + carried}"
        return DeadPage([_s(m) for m, _ in page], next_cursor)

    async def retry_dead(self, job_id: str, queue: str | None = None) -> None:
        found = await self.find_job_queue(job_id, queue)
        if found is None:
            raise JobNotFound(job_id)
        qk = self.queue_keys(found)
        async with redis_errors():
            code = await self.scripts.dead_retry(
                keys=[qk.dead, qk.pending, qk.marker, qk.job(job_id), qk.stats], args=[job_id]
            )
        if int(code) != ScriptCode.OK:
            raise JobNotFound(job_id)

    async def purge_dead(self, job_id: str, queue: str | None = None) -> None:
        found = await self.find_job_queue(job_id, queue)
        if found is None:
            raise JobNotFound(job_id)
        qk = self.queue_keys(found)
        async with redis_errors():
            code = await self.scripts.dead_purge(keys=[qk.dead, qk.job(job_id)], args=[job_id])
        if int(code) != ScriptCode.OK:
            raise JobNotFound(job_id)
