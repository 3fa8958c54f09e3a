"""The enqueue command, in its two encodings, and the planning every enqueue shares (no I/O).

The script (``enqueue.lua``) does everything: idempotency keys, delays, depth limits. Plain jobs
(one queue, no key, no delay, no limit) need no logic on the server, and a Lua script is the costliest
way to run four writes: on a Redis coming out of idle (the wake-up path) the script took ~100 us, the
same writes as a MULTI/EXEC about a third of that. So ``Enqueue.plain`` is a second encoding of the
same command: the same keys, the same writes (the job hash, the pending entry, the wake-up marker,
the counter), as atomic (all or nothing; a full Redis refuses the whole transaction at queueing
time). ``tests/core/test_enqueue_paths.py`` runs both and compares what they leave in Redis.

The clock: in both encodings a ready job's pending score takes its millisecond from the payload's
``created_at`` (the producer's clock, the acceptance time it records and answers with; the script
gets it as a per-item argument), because a MULTI cannot read Redis's clock. That ms only orders
jobs within a priority band (FIFO), never decides a lease or a due time, which stay on Redis
``TIME``. Producers whose clocks disagree interleave their jobs by their own clocks: keep them
NTP-synced.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskq.commands.base import Call, QueueCommand, plain, text
from taskq.config import QueueConfig
from taskq.constants import BAND, MAX_PRIORITY
from taskq.errors import (
    IdempotencyConflict,
    PayloadTooLarge,
    QueueFull,
    QueueNotDeclared,
    ScriptCode,
    TaskqError,
)
from taskq.keys import GlobalKeys, QueueKeys, validate_queue_name
from taskq.models import JobPayload, new_job_id, new_job_ids
from taskq.results import EncodedJob, Enqueued, EnqueueRequest
from taskq.settings import queue_accepted

#: Plain jobs up to this many per call go as one MULTI/EXEC (faster than the script at every size
#: measured, 1,000 included); a bigger batch uses the script, so one call's memory stays bounded.
PLAIN_MAX_JOBS = 1000
#: A key's request record outlives the queue's own record of it (written a moment later) by this much.
KEY_RECORD_MARGIN_MS = 60_000

#: One request of a batch: its position in the call, the request, its payload and the payload's JSON.
Item = tuple[int, EnqueueRequest, JobPayload, str]


def pending_score(priority: int, ms: int) -> int:
    """Priority band first (MAX_PRIORITY most urgent sorts first), then ms: _lib.lua's pending_score."""
    return (MAX_PRIORITY - priority) * BAND + ms


class Enqueue(QueueCommand):
    SCRIPT = "enqueue"
    KEYS = ("pending", "scheduled", "marker", "stats", "event_stream")
    #: Per item, after KEYS: its job hash, and its idempotency key (the job hash again when none).
    ITEM_KEYS = ("job", "idempotency_key")

    def __call__(self, items: Sequence[Item]) -> Call[list[Enqueued]]:
        """The script call for ``items`` (all of this queue); the reply: one ``Enqueued`` per item, in
        order. Raises ``QueueFull`` or ``IdempotencyConflict`` (nothing of the queue written)."""
        qk, config = self.qk, self.config
        keys: list[Any] = self._fixed.copy()
        args: list[Any] = [config.idempotency_ttl_ms, config.max_depth, config.events_max_len]
        for _, req, payload, body in items:
            idem = req.idempotency_key
            job = qk.job(payload.id)
            keys += [job, qk.idempotency(idem) if idem else job]
            fp = (req.fingerprint or "*") if idem else ""
            args += [payload.id, body, req.priority, max(0, int(req.delay_ms)), fp, payload.created_at]

        def parse(reply: Sequence[Any]) -> list[Enqueued]:
            code = int(reply[0])
            if code == ScriptCode.QUEUE_FULL:
                raise QueueFull(qk.queue, int(reply[1]), config.max_depth)
            if code == ScriptCode.IDEMPOTENCY_CONFLICT:
                raise IdempotencyConflict(items[int(reply[1]) - 1][1].idempotency_key or "", text(reply[2]))
            if code != ScriptCode.OK:
                raise TaskqError(f"enqueue failed with code {code}")
            return [
                Enqueued(text(reply[3 + 3 * n]), created=int(reply[2 + 3 * n]) == ScriptCode.OK)
                for n in range(len(items))
            ]

        return self.call(keys, args, parse)

    # The plain encoding: MULTI/EXEC commands writing what the script writes for plain jobs.

    def hset(self, payload: JobPayload, body: str) -> tuple[Any, ...]:
        """A plain job's hash, as the script writes it."""
        return (
            "HSET",
            self.qk.job(payload.id),
            "payload",
            body,
            "status",
            "queued",
            "priority",
            payload.priority,
        )

    def queued_event(self, job_id: str) -> tuple[Any, ...]:
        """A new job's 'queued' event, as the script's emit_event writes it (lua/_events.lua)."""
        fields = ("job", job_id, "type", "queued", "status", "queued", "attempt", 0)
        return ("XADD", self.qk.event_stream, "*", *fields)

    def tail(self, scored: list[Any], n: int) -> list[tuple[Any, ...]]:
        """After the hashes and events: the pending entries, the wake-up marker (one idle worker
        wakes, as the script does), the counter, and the events' cap (once per call, as the scripts
        apply it)."""
        qk = self.qk
        return [
            ("ZADD", qk.pending, *scored),
            ("ZADD", qk.marker, 0, "m"),
            ("HINCRBY", qk.stats, "enqueued", n),
            ("XTRIM", qk.event_stream, "MAXLEN", "~", self.config.events_max_len),
        ]

    def plain(self, items: Sequence[Item]) -> list[tuple[Any, ...]]:
        commands: list[tuple[Any, ...]] = []
        scored: list[Any] = []
        for _, req, payload, body in items:
            commands.append(self.hset(payload, body))
            commands.append(self.queued_event(payload.id))
            scored += [pending_score(req.priority, payload.created_at), payload.id]
        return commands + self.tail(scored, len(items))


@dataclass(frozen=True, slots=True)
class PreparedEnqueue:
    size: int
    by_queue: dict[str, list[Item]]
    calls: list[Call[list[Enqueued]]]
    #: When the call is plain jobs for one queue (no idempotency key, no delay, no depth limit):
    #: the commands of a MULTI/EXEC that writes them, to be sent instead of ``calls``.
    plain: list[tuple[Any, ...]] | None = None

    def collect(self, replies: Sequence[list[Enqueued]]) -> list[Enqueued]:
        """Each request's outcome, in request order, from the parsed replies of ``calls``."""
        if self.plain is not None:  # one queue, every job new (errors were raised by the transaction)
            ((_, items),) = self.by_queue.items()
            return [Enqueued(payload.id, created=True) for _, _, payload, _ in items]
        results: list[Enqueued | None] = [None] * self.size
        for items, outcomes in zip(self.by_queue.values(), replies, strict=True):
            for (index, _, _, _), outcome in zip(items, outcomes, strict=True):
                results[index] = outcome
        return [r for r in results if r is not None]


def request_of(item: EnqueueRequest | EncodedJob) -> EnqueueRequest:
    return item.req if isinstance(item, EncodedJob) else item


class Planner:
    """Payloads, commands and admission of enqueues, for ``Taskq`` and ``SyncTaskq`` alike (no I/O).
    It also remembers which queues this process put in the registry and each queue's commands."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.keys = GlobalKeys(config.prefix)
        self.known_queues: set[str] = set()

    def declared_sorted(self) -> list[str] | None:
        """The declared queues, sorted; None with QUEUES=* (any name)."""
        declared = self.config.declared
        return None if declared is None else sorted(declared)

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

    def encoded(self, req: EnqueueRequest, job_id: str) -> tuple[JobPayload, str]:
        """The job's payload and its JSON, refused when over the size limit."""
        payload = self.build_payload(req, job_id)
        body = payload.to_json()
        limit = self.config.max_payload_bytes
        if len(body) * 4 > limit and (size := len(body.encode())) > limit:  # UTF-8: <= 4 B a char
            raise PayloadTooLarge(size, limit)
        return payload, body

    def item(self, item: EnqueueRequest | EncodedJob, job_id: str) -> tuple[EnqueueRequest, JobPayload, str]:
        """The request, its payload and JSON: as encoded already, or encoded now with ``job_id``."""
        if isinstance(item, EncodedJob):
            return item.req, item.payload, item.text
        return (item, *self.encoded(item, job_id))

    def is_plain(self, requests: Sequence[EnqueueRequest | EncodedJob]) -> bool:
        """True when a MULTI/EXEC can write these jobs: one queue, no server-side logic needed."""
        if self.config.max_depth > 0 or not requests or len(requests) > PLAIN_MAX_JOBS:
            return False
        queue = request_of(requests[0]).queue
        return all(
            (r := request_of(item)).queue == queue and not r.idempotency_key and r.delay_ms <= 0
            for item in requests
        )

    def prepare(self, requests: Sequence[EnqueueRequest | EncodedJob], enqueue_of: Any) -> PreparedEnqueue:
        """The batch grouped by queue, as script calls or (plain jobs) one transaction's commands.
        ``enqueue_of(queue)`` gives the queue's ``Enqueue`` command."""
        if len(requests) == 1:
            return self.prepare_one(requests[0], enqueue_of)
        by_queue: dict[str, list[Item]] = {}
        for index, (item, job_id) in enumerate(zip(requests, new_job_ids(len(requests)), strict=True)):
            req, payload, body = self.item(item, job_id)
            by_queue.setdefault(req.queue, []).append((index, req, payload, body))
        if self.is_plain(requests):
            ((queue, items),) = by_queue.items()
            return PreparedEnqueue(len(requests), by_queue, [], enqueue_of(queue).plain(items))
        calls = [enqueue_of(queue)(items) for queue, items in by_queue.items()]
        return PreparedEnqueue(len(requests), by_queue, calls)

    def prepare_one(self, request: EnqueueRequest | EncodedJob, enqueue_of: Any) -> PreparedEnqueue:
        """``prepare`` for one job (a client's ``enqueue``), the same outcome without the batch's
        grouping, zips and generators, which were a third of the planner's cost per call."""
        req, payload, body = self.item(request, new_job_id())
        items = [(0, req, payload, body)]
        command = enqueue_of(req.queue)
        if self.config.max_depth > 0 or req.idempotency_key or req.delay_ms > 0:
            return PreparedEnqueue(1, {req.queue: items}, [command(items)])
        return PreparedEnqueue(1, {req.queue: items}, [], command.plain(items))

    # Admission and bookkeeping around the writes (plain commands, outside any queue's slot).

    def unregistered(self, queues: Iterable[str]) -> list[str]:
        """The queues this process has not yet put in the registry."""
        return [queue for queue in queues if queue not in self.known_queues]

    def register(self, new_queues: Sequence[str]) -> Call[Any]:
        return plain("SADD", self.keys.queues, *new_queues)

    def registered(self, new_queues: Sequence[str]) -> None:
        if len(self.known_queues) >= 4096:  # only with QUEUES=*: otherwise the declared few
            self.known_queues.clear()
        self.known_queues.update(new_queues)

    def depth_calls(self, queue_keys: Iterable[QueueKeys]) -> list[Call[Any]]:
        return [
            plain(word, key)
            for qk in queue_keys
            for word, key in (("ZCARD", qk.pending), ("ZCARD", qk.scheduled))
        ]

    def refuse_overflow(self, by_queue: Mapping[str, Sequence[object]], counts: Sequence[Any]) -> None:
        """Raise ``QueueFull`` if a queue's pending + scheduled counts plus its new jobs pass the limit."""
        for i, (queue, items) in enumerate(by_queue.items()):
            depth = int(counts[2 * i]) + int(counts[2 * i + 1])
            if depth + len(items) > self.config.max_depth:
                raise QueueFull(queue, depth, self.config.max_depth)

    def idempotency_claim(self, key: str, queue: str, fingerprint: str, delay_ms: int) -> list[Call[Any]]:
        """SET NX then GET of the fleet-wide record of what ``key`` names (see
        ``Taskq.claim_idempotency_key``); ``check_idempotency`` reads the GET."""
        ttl = self.config.idempotency_ttl_ms + max(0, delay_ms) + KEY_RECORD_MARGIN_MS
        name = self.keys.idempotency(key)
        return [plain("SET", name, f"{queue} {fingerprint}", "NX", "PX", ttl), plain("GET", name)]

    @staticmethod
    def check_idempotency(key: str, queue: str, fingerprint: str, current: Any) -> None:
        if current is not None and text(current) != f"{queue} {fingerprint}":
            raise IdempotencyConflict(key)
