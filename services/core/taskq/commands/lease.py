"""The commands a worker runs on its jobs: claim, heartbeat, complete, fail, release, progress."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from taskq.commands.base import Call, QueueCommand, text
from taskq.errors import ScriptCode
from taskq.models import Ack, ClaimedJob, JobError, JobStatus
from taskq.results import ClaimBatch


def claimed(queue: str, flat: Sequence[Any], start: int) -> list[ClaimedJob]:
    """The jobs of a claim reply: (id, token, attempts, payload) per job from ``start``."""
    return [
        ClaimedJob(
            id=text(flat[i]), queue=queue, token=int(flat[i + 1]), attempts=int(flat[i + 2]), raw=flat[i + 3]
        )
        for i in range(start, len(flat), 4)
    ]


def due(value: Any) -> int | None:
    ms = int(value)
    return None if ms < 0 else ms


class Claim(QueueCommand):
    SCRIPT = "claim"
    KEYS = ("pending", "scheduled", "active", "marker", "token", "claim", "paused", "event_stream")

    def __call__(self, worker_id: str, n: int, nonce: str) -> Call[ClaimBatch]:
        qk = self.qk
        args = (qk.job_prefix, worker_id, self.config.lease_ms, n, nonce, self.config.events_max_len)
        return self.call(self.keys(qk.claim(nonce)), args, self.parse)

    def parse(self, flat: Sequence[Any]) -> ClaimBatch:
        return ClaimBatch(claimed(self.qk.queue, flat, 1), due(flat[0]))


class Complete(QueueCommand):
    SCRIPT = "complete"
    KEYS = ("active", "stats", "pending", "scheduled", "marker", "token", "claim", "paused", "event_stream")

    def __call__(
        self, acks: Sequence[Ack], worker_id: str, claim_next: int, nonce: str
    ) -> Call[tuple[list[bool], ClaimBatch]]:
        """Acks (False per ack whose token was stale) and, fused, a claim of ``claim_next`` more."""
        qk, config = self.qk, self.config
        args: list[Any] = [
            qk.job_prefix, config.result_ttl_ms, qk.events, worker_id, config.lease_ms, claim_next,
            len(acks), nonce, config.events_max_len,
        ]  # fmt: skip
        for ack in acks:
            args += [ack.id, ack.token, "c" if ack.cancelled else "s", ack.result]
        n = len(acks)

        def parse(flat: Sequence[Any]) -> tuple[list[bool], ClaimBatch]:
            return [int(c) == ScriptCode.OK for c in flat[:n]], ClaimBatch(
                claimed(qk.queue, flat, n + 1), due(flat[n])
            )

        return self.call(self.keys(qk.claim(nonce)), args, parse)


class Heartbeat(QueueCommand):
    SCRIPT = "heartbeat"
    KEYS = ("active",)

    def __call__(self, pairs: Sequence[tuple[str, int]]) -> Call[dict[tuple[str, int], ScriptCode]]:
        """Renew these leases; the reply: (job id, token) -> OK, CANCEL_REQUESTED or STALE_TOKEN."""
        args: list[Any] = [self.qk.job_prefix, self.config.lease_ms]
        for job_id, token in pairs:
            args += [job_id, token]

        def parse(codes: Sequence[Any]) -> dict[tuple[str, int], ScriptCode]:
            return {
                (job_id, int(token)): ScriptCode(int(code))
                for (job_id, token), code in zip(pairs, codes, strict=True)
            }

        return self.call(self._fixed, args, parse)


class Fail(QueueCommand):
    SCRIPT = "fail"
    KEYS = ("active", "scheduled", "dead", "stats", "marker", "event_stream")

    def __call__(
        self, job_id: str, token: int, error: JobError, *, retryable: bool, reason: str, backoff_ms: int
    ) -> Call[JobStatus | None]:
        """The reply: the job's new status, None when the token was stale (nothing changed)."""
        qk, config = self.qk, self.config
        args = (
            qk.job_prefix, job_id, token, error.model_dump_json(exclude_none=True), "1" if retryable else "0",
            backoff_ms, reason, config.dead_ttl_ms, qk.events, config.result_ttl_ms, config.events_max_len,
        )  # fmt: skip
        return self.call(self._fixed, args, self.parse)

    @staticmethod
    def parse(reply: Sequence[Any]) -> JobStatus | None:
        code, status = reply
        return None if int(code) == ScriptCode.STALE_TOKEN else JobStatus(text(status))


class Release(QueueCommand):
    SCRIPT = "release"
    KEYS = ("active", "pending", "marker", "stats", "event_stream")

    def __call__(self, held: Iterable[tuple[str, int]]) -> Call[int] | None:
        """Hand jobs back (no attempt used); the reply: how many went back. None: nothing to send."""
        qk, config = self.qk, self.config
        args: list[Any] = [qk.job_prefix, config.result_ttl_ms, qk.events, config.events_max_len]
        fixed = len(args)
        for job_id, token in held:
            args += [job_id, token]
        return None if len(args) == fixed else self.call(self._fixed, args, int)


class Progress(QueueCommand):
    SCRIPT = "progress"
    KEYS = ("job", "event_stream")

    def __call__(self, job_id: str, token: int, doc: str) -> Call[bool]:
        args = (token, doc, job_id, self.config.events_max_len)
        return self.call(self.keys(self.qk.job(job_id)), args, _is_ok)


def _is_ok(code: Any) -> bool:
    return int(code) == ScriptCode.OK
