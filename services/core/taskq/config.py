"""``QueueConfig``: the numbers the scripts need, in the units they use (ms), derived from settings.

``CoreSettings`` owns every default and validates every value; this is only its translation to ms,
so it has no defaults of its own and is built by ``from_settings`` (tests too, through settings).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from taskq.settings import CoreSettings


@dataclass(frozen=True, slots=True)
class QueueConfig:
    prefix: str
    lease_ms: int
    result_ttl_ms: int
    dead_ttl_ms: int
    idempotency_ttl_ms: int
    max_payload_bytes: int
    max_depth: int
    default_max_attempts: int
    default_timeout: float
    backoff_base_ms: int
    backoff_max_ms: int
    #: Entries each queue's event stream keeps (XADD MAXLEN ~).
    events_max_len: int
    #: The queues jobs may name (``CoreSettings.declared_queues``); None accepts any valid name.
    declared: frozenset[str] | None

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
            events_max_len=s.events_max_len,
            declared=s.declared_queues(),
        )

    @classmethod
    def of(cls, **settings: Any) -> QueueConfig:
        """From ``CoreSettings(**settings)``: the settings' defaults and checks, for scripts,
        benchmarks and tests that set a few values in code."""
        return cls.from_settings(CoreSettings(**settings))

    def backoff_ms(
        self, attempts: int, rng: random.Random | None = None, *, backoff: tuple[float, float] | None = None
    ) -> int:
        """Exponential backoff with *equal* jitter: a draw from [ceiling/2, ceiling].

        ``backoff`` is a task's own (base, max) in seconds (``Task.retry_backoff``); None: the
        deployment's ``RETRY_BACKOFF_*``. The one place a retry's delay is computed.

        Equal, not full ([0, ceiling]), on purpose: a retry is never immediate (full jitter may draw
        0 ms and hammer a dependency that just failed), and the spread of the upper half is still
        enough to break up a herd of jobs that failed together."""
        if backoff is None:
            base_ms, max_ms = self.backoff_base_ms, self.backoff_max_ms
        else:
            base_ms, max_ms = round(backoff[0] * 1000), round(backoff[1] * 1000)
        ceiling = min(max_ms, base_ms * 2 ** max(0, attempts - 1))
        return (rng or random).randint(ceiling // 2, ceiling) if ceiling > 0 else 0
