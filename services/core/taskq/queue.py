"""``Taskq``: the asyncio facade every taskq process uses, over the command layer.

Each method picks its commands (``taskq.commands``: keys, arguments, reply, codes, declared once)
and runs them on an executor: redis-py's asyncio client, or for the producer's enqueues a lean
``Wire``. Every method is one round trip to Redis unless it says otherwise. Redis failures surface
as ``RedisUnavailable`` (connection refused, timeout) or ``RedisFull`` (OOM under noeviction).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Unpack

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from taskq.claims import ClaimNonces
from taskq.commands import CommandSet, Planner, PreparedEnqueue, plain
from taskq.commands.base import text
from taskq.commands.enqueue import pending_score, request_of
from taskq.commands.executor import Executor, RedisExecutor, WireExecutor, exec_results
from taskq.config import QueueConfig
from taskq.errors import JobNotFound, ScriptCode, redis_errors
from taskq.keys import QueueKeys, validate_queue_name
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
from taskq.results import (
    ClaimBatch,
    DeadPage,
    EncodedJob,
    Enqueued,
    EnqueueOptions,
    EnqueueRequest,
    ReapResult,
)
from taskq.scripts import Scripts
from taskq.settings import CoreSettings, queue_accepted
from taskq.wire import Wire

#: A streamed plain enqueue writes this many commands at a time; smaller batches go in one write.
STREAM_CHUNK = 128


def fingerprint_of(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class Taskq:
    """All of taskq's Redis operations. One instance per process (it holds each queue's commands)."""

    def __init__(self, redis: Redis, config: QueueConfig, *, wire: Wire | None = None) -> None:
        self.redis = redis
        self.config = config
        self.commands = CommandSet(config)
        self.keys = self.commands.keys
        self.planner = Planner(config)
        #: Readiness checks load every script through this (``check_redis``).
        self.scripts = Scripts.register(redis)
        self.executor: Executor = RedisExecutor(redis)
        #: When given, the hot enqueues run over this lean connection: on a lone request (an idle
        #: producer, the wake-up path) redis-py's own CPU is most of the call.
        self.wire = wire
        self.fast: Executor = self.executor if wire is None else WireExecutor(wire)
        #: Claims whose reply was lost, to ask again (see taskq.claims).
        self.nonces = ClaimNonces()

    @classmethod
    def from_settings(cls, redis: Redis, settings: CoreSettings, *, wire: Wire | None = None) -> Taskq:
        return cls(redis, QueueConfig.from_settings(settings), wire=wire)

    def queue_keys(self, queue: str) -> QueueKeys:
        return self.commands[queue].keys

    # ---------------------------------------------------------------- producing

    def accepts(self, queue: str) -> bool:
        return queue_accepted(self.config.declared, queue)

    def accepted_queue(self, queue: str) -> str:
        return self.planner.accepted_queue(queue)

    def build_payload(self, req: EnqueueRequest, job_id: str | None = None) -> JobPayload:
        return self.planner.build_payload(req, job_id)

    async def enqueue(
        self,
        task: str,
        args: Mapping[str, Any] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> Enqueued:
        req = EnqueueRequest(task, args or {}, **options)
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
        _, current = await self.executor.run_many(
            self.planner.idempotency_claim(key, queue, fingerprint, delay_ms)
        )
        self.planner.check_idempotency(key, queue, fingerprint, current)

    def encode(self, req: EnqueueRequest) -> EncodedJob:
        """Build and size one job's payload now (raises ``PayloadTooLarge``, or ``ValueError`` for a
        bad queue name or priority), so that it can join a batch without failing it."""
        payload, body = self.planner.encoded(req, new_job_id())
        return EncodedJob(req, payload, body)

    def prepare_enqueue(self, requests: Sequence[EnqueueRequest | EncodedJob]) -> PreparedEnqueue:
        """Payloads and commands of an enqueue, grouped by queue (no I/O)."""
        return self.planner.prepare(requests, self._enqueue_command)

    def _enqueue_command(self, queue: str) -> Any:
        return self.commands[queue].enqueue

    async def enqueue_many(self, requests: Sequence[EnqueueRequest | EncodedJob]) -> list[Enqueued]:
        """Enqueue jobs; those of one queue go in one atomic script, all queues in one round trip.

        Raises ``QueueFull`` (nothing of that queue written), ``IdempotencyConflict`` (a key was reused
        for a different request: nothing of that queue written), ``PayloadTooLarge`` before any I/O
        (only for plain requests: an ``EncodedJob`` was sized by ``encode``).
        """
        if self.wire is not None and len(requests) > STREAM_CHUNK and self.planner.is_plain(requests):
            return await self._enqueue_streamed(requests)
        batch = self.prepare_enqueue(requests)
        if len(batch.calls) > 1 and self.config.max_depth > 0:
            counts = await self.executor.run_many(
                self.planner.depth_calls(map(self.queue_keys, batch.by_queue))
            )
            self.planner.refuse_overflow(batch.by_queue, counts)
        await self._register(self.planner.unregistered(batch.by_queue))
        if batch.plain is not None:
            # The producer's hot path: plain jobs of one queue are one MULTI/EXEC.
            await self.fast.transaction(batch.plain)
            return batch.collect(())
        if len(batch.calls) == 1:
            return batch.collect([await self.fast.run(batch.calls[0])])
        return batch.collect(await self.executor.run_many(batch.calls))

    async def _register(self, new_queues: Sequence[str]) -> None:
        # The queue registry is fleet-wide (not in the queue's hash slot), so it is written outside
        # the script or transaction; once per queue per process is enough. Before the jobs, never
        # after: GET and DELETE /jobs/{id} find a job through the registry, so a job written to a
        # queue that a lost connection kept out of it would answer 404 and still run. A registered
        # queue whose write then failed is only an empty queue in the listing.
        if new_queues:
            await self.executor.run(self.planner.register(new_queues))
            self.planner.registered(new_queues)

    async def _enqueue_streamed(self, requests: Sequence[EnqueueRequest | EncodedJob]) -> list[Enqueued]:
        """A big batch of plain jobs for one queue, as one MULTI/EXEC written part by part while the
        later payloads are still being built: Redis parses and queues the first HSETs on the other
        core meanwhile. A payload that fails mid-way (too large, not JSON) sends DISCARD instead of
        EXEC, so nothing is written, and its error is raised."""
        wire = self.wire
        assert wire is not None
        command = self.commands[self.accepted_queue(request_of(requests[0]).queue)].enqueue
        await self._register(self.planner.unregistered([command.qk.queue]))
        ids = new_job_ids(len(requests))
        scored: list[Any] = []
        payloads: list[JobPayload] = []

        def parts() -> Iterator[list[tuple[Any, ...]]]:
            part: list[tuple[Any, ...]] = [("MULTI",)]
            for item, job_id in zip(requests, ids, strict=True):
                req, payload, body = self.planner.item(item, job_id)
                payloads.append(payload)
                part.append(command.hset(payload, body))
                part.append(command.queued_event(payload.id))
                scored.extend((pending_score(req.priority, payload.created_at), payload.id))
                if len(part) >= STREAM_CHUNK:
                    yield part
                    part = []
            yield [*part, *command.tail(scored, len(requests)), ("EXEC",)]

        async with redis_errors():
            exec_results(await wire.execute_streamed(parts(), abort=("DISCARD",)))
        return [Enqueued(payload.id, created=True) for payload in payloads]

    # ---------------------------------------------------------------- consuming

    async def claim(self, queue: str, worker_id: str, n: int = 1) -> ClaimBatch:
        """Claim up to ``n`` jobs. When an earlier claim of ``queue`` lost its reply, this call asks
        for that claim's jobs instead (possibly more than ``n``, possibly none)."""
        nonce = self.nonces.take(queue)
        try:
            return await self.executor.run(self.commands[queue].claim(worker_id, n, nonce))
        except BaseException:
            # A timeout, a dropped connection, a cancel: the claim may have run. Ask again next time.
            self.nonces.doubt(queue, nonce)
            raise

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
        calls = [self.commands[queue].heartbeat(pairs) for queue, pairs in held.items() if pairs]
        codes: dict[tuple[str, int], ScriptCode] = {}
        for reply in await self.executor.run_many(calls, prelude=also):
            codes.update(reply)
        return codes

    async def complete(
        self, queue: str, acks: Sequence[Ack], *, worker_id: str = "", claim_next: int = 0
    ) -> tuple[list[bool], ClaimBatch]:
        """Ack finished jobs and, in the same call, claim up to ``claim_next`` more (recoverable as
        ``claim`` is: an earlier claim of ``queue`` whose reply was lost is asked for instead).

        Returns one flag per ack (False: stale token, the ack was refused) and the claimed batch.
        """
        nonce = self.nonces.take(queue) if claim_next > 0 else "0"
        try:
            return await self.executor.run(self.commands[queue].complete(acks, worker_id, claim_next, nonce))
        except BaseException:
            if claim_next > 0:
                self.nonces.doubt(queue, nonce)  # as in claim: the fused claim may have run
            raise

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
        backoff: tuple[float, float] | None = None,
    ) -> JobStatus | None:
        """Record a failed execution: ``SCHEDULED`` (retry after backoff), ``FAILED`` (dead-lettered),
        or ``CANCELLED`` (it would have been retried, but cancellation was requested).

        ``backoff``: the task's own (base, max) seconds (``Task.retry_backoff``); None: the deployment's.
        Returns None when the token is stale (another worker holds the job; nothing was changed).
        """
        delay_ms = self.config.backoff_ms(attempts, backoff=backoff)
        call = self.commands[queue].fail(
            job_id, token, error, retryable=retryable, reason=reason, backoff_ms=delay_ms
        )
        return await self.executor.run(call)

    async def release(self, queue: str, held: Iterable[tuple[str, int]]) -> int:
        """Hand jobs back without using an attempt (graceful shutdown). Returns how many went back."""
        call = self.commands[queue].release(held)
        return 0 if call is None else await self.executor.run(call)

    async def set_progress(
        self, queue: str, job_id: str, token: int, percent: float, message: str | None = None
    ) -> bool:
        if not 0 <= percent <= 100:
            raise ValueError("percent must be between 0 and 100")
        doc = dumps({"percent": percent, "message": message})
        return await self.executor.run(self.commands[queue].progress(job_id, token, doc))

    # ---------------------------------------------------------------- maintenance

    async def reap(
        self, queue: str, *, limit: int = 1000, lock_seconds: float = 0, owner: str = ""
    ) -> ReapResult:
        """Take back jobs with expired leases. With ``lock_seconds`` it runs at most once per that
        interval across every caller (the others get ``ran=False``)."""
        return await self.executor.run(self.commands[queue].reap(limit, int(lock_seconds * 1000), owner))

    async def promote(self, queue: str, limit: int = 1000) -> int:
        return await self.executor.run(self.commands[queue].promote(limit))

    # ---------------------------------------------------------------- inspection and control

    async def queues(self) -> list[str]:
        members = await self.executor.run(plain("SMEMBERS", self.keys.queues))
        return sorted(text(m) for m in members)

    async def queue_count(self) -> int:
        """How many queues the registry holds (one O(1) call, whatever their names)."""
        return int(await self.executor.run(plain("SCARD", self.keys.queues)))

    async def register_queues(self, queues: Iterable[str]) -> None:
        names = [validate_queue_name(q) for q in queues]
        if names:
            await self.executor.run(self.planner.register(names))

    def declared_queues(self) -> list[str] | None:
        """The declared queues, sorted; None with QUEUES=* (any name). A lookup by id without a queue
        hint and a /metrics scrape read these only, so their cost is fixed by configuration, never by
        the names clients once sent (the registry may hold more: queues declared in the past)."""
        return self.planner.declared_sorted()

    async def _candidates(self, queue: str | None) -> list[str]:
        return [queue] if queue else (self.declared_queues() or await self.queues())

    async def find_job_queue(self, job_id: str, queue: str | None = None) -> str | None:
        """Which queue holds ``job_id`` (one pipelined EXISTS per declared queue)."""
        candidates = await self._candidates(queue)
        calls = [plain("EXISTS", self.queue_keys(q).job(job_id)) for q in candidates]
        found = await self.executor.run_many(calls) if calls else []
        return next((q for q, hit in zip(candidates, found, strict=True) if hit), None)

    async def job_hash(self, job_id: str, queue: str | None = None) -> tuple[str, dict[str, bytes]] | None:
        """The raw job hash and its queue, or None. One round trip (two with QUEUES=*)."""
        candidates = await self._candidates(queue)
        calls = [plain("HGETALL", self.queue_keys(q).job(job_id)) for q in candidates]
        for q, fields in zip(candidates, await self.executor.run_many(calls) if calls else [], strict=True):
            if fields:
                return q, {text(k): v for k, v in fields.items()}
        return None

    async def get_job(self, job_id: str, queue: str | None = None) -> Job | None:
        found = await self.job_hash(job_id, queue)
        return None if found is None else job_from_hash(job_id, found[0], found[1])

    async def _holder(self, job_id: str, queue: str | None) -> str:
        found = await self.find_job_queue(job_id, queue)
        if found is None:
            raise JobNotFound(job_id)
        return found

    async def cancel(self, job_id: str, queue: str | None = None) -> JobStatus:
        """Cancel a job: CANCELLED at once when queued or scheduled; RUNNING when only flagged.

        Raises ``JobNotFound``, or ``InvalidTransition`` when it already finished.
        """
        return await self.executor.run(self.commands[await self._holder(job_id, queue)].cancel(job_id))

    async def stats(self, queue: str) -> QueueStats:
        return await self.executor.run(self.commands[queue].stats())

    async def all_stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        """Stats of ``queues`` (default: the registry), in one round trip."""
        names = await self.queues() if queues is None else list(queues)
        return await self.executor.run_many([self.commands[q].stats() for q in names]) if names else []

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
        return DeadPage([text(m) for m, _ in page], next_cursor)

    async def retry_dead(self, job_id: str, queue: str | None = None) -> None:
        await self.executor.run(self.commands[await self._holder(job_id, queue)].dead_retry(job_id))

    async def purge_dead(self, job_id: str, queue: str | None = None) -> None:
        await self.executor.run(self.commands[await self._holder(job_id, queue)].dead_purge(job_id))
