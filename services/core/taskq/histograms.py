"""Latency histograms kept in Redis hashes, so every process adds to one count and a scrape reads it.

A histogram hash holds, per series, one field per bucket (``<series>:<bucket index>``, counts *not*
cumulative) and a sum (``<series>:sum``, in the unit the writer chose). A bucket index is the first
bound of ``LATENCY_BUCKETS_MS`` the value is at most; ``len(bounds)`` is the +Inf bucket. Writers:
the claim, complete and fail scripts (``lua/_histogram.lua``, series ``w:<task>`` and ``r:<task>``,
sums in ms) and the producer's request timer (its own series, sums in microseconds).

``job_latencies`` reads the job histograms of some queues in one round trip and folds every task the
registry does not know into ``OTHER_TASK``: a task name comes from a job, so the label set stays
bounded by the registry whatever a client enqueued.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskq.commands import plain
from taskq.commands.base import text
from taskq.constants import LATENCY_BUCKETS_MS
from taskq.queue import Taskq

#: Bucket upper bounds in seconds, in Prometheus's unit.
BOUNDS_SECONDS: tuple[float, ...] = tuple(ms / 1000 for ms in LATENCY_BUCKETS_MS)
#: The task label of every job whose task the registry does not know (never a valid task name).
OTHER_TASK = "(other)"
#: Series kinds the scripts write, and their names here.
KINDS = {"w": "wait", "r": "run"}


def bucket_index(ms: float) -> int:
    """The bucket ``ms`` falls in: the first bound it is at most (as _histogram.lua's bucket_of)."""
    return bisect.bisect_left(LATENCY_BUCKETS_MS, ms)


@dataclass(slots=True)
class Histogram:
    #: Per-bucket counts, not cumulative; the last one is +Inf.
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    sum: float = 0.0  # in the writer's unit until scaled by ``parse``

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus's buckets: (le, count of values <= le), ending with +Inf == count."""
        out, running = [], 0
        for le, n in zip((*map(_le, BOUNDS_SECONDS), "+Inf"), self.counts, strict=True):
            running += n
            out.append((le, float(running)))
        return out

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum


def _le(bound: float) -> str:
    return repr(bound)  # 0.001, 2.5, 3600.0: Prometheus's float text


def parse(fields: Mapping[Any, Any], sum_scale: float) -> dict[str, Histogram]:
    """The histograms of one hash by series; sums times ``sum_scale`` (to seconds). Fields that do
    not parse (another bound set's leftovers, hand edits) are skipped, never an error at scrape."""
    out: dict[str, Histogram] = {}
    for raw_field, raw_value in fields.items():
        series, _, slot = text(raw_field).rpartition(":")
        try:
            value = int(raw_value)
        except ValueError:
            continue
        hist = out.setdefault(series, Histogram())
        if slot == "sum":
            hist.sum += value * sum_scale
        elif slot.isdigit() and int(slot) < len(hist.counts):
            hist.counts[int(slot)] += value
    return {series: hist for series, hist in out.items() if hist.count}


@dataclass(frozen=True, slots=True)
class JobLatency:
    queue: str
    kind: str  # "wait" or "run"
    task: str
    histogram: Histogram


def fold_tasks(queue: str, series: Mapping[str, Histogram], known: Collection[str]) -> Iterator[JobLatency]:
    """One histogram per (kind, task), unknown tasks added up under OTHER_TASK; sorted."""
    merged: dict[tuple[str, str], Histogram] = {}
    for name, hist in series.items():
        kind, _, task = name.partition(":")
        if kind not in KINDS:
            continue
        key = (KINDS[kind], task if task in known else OTHER_TASK)
        merged.setdefault(key, Histogram()).merge(hist)
    for (kind, task), hist in sorted(merged.items()):
        yield JobLatency(queue, kind, task, hist)


async def job_latencies(taskq: Taskq, queues: Sequence[str], known: Collection[str]) -> list[JobLatency]:
    """Wait and run histograms of ``queues`` (one round trip), tasks outside ``known`` folded."""
    if not queues:
        return []
    hashes: Iterable[Mapping[Any, Any]] = await taskq.executor.run_many(
        [plain("HGETALL", taskq.queue_keys(q).hist) for q in queues]
    )
    out: list[JobLatency] = []
    for queue, fields in zip(queues, hashes, strict=True):
        out.extend(fold_tasks(queue, parse(fields, 1 / 1000), known))
    return out
