"""Prometheus metrics read from Redis at scrape time, so every producer and worker process is counted
once: the counters live in each queue's stats hash (written by the Lua scripts), not in a process.
So do the histograms: job wait and run time per queue and task in each queue's histogram hash
(``taskq.histograms``), API request duration in one hash every producer process adds to
(``producer.http_metrics``).

prometheus_client collectors are synchronous, so the snapshot is read first (async) and a one-off
``Collector`` over it renders the families.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from producer.http_metrics import parse_series
from taskq import QueueStats, RedisUnavailable, Taskq, TaskqError
from taskq.commands import plain
from taskq.controls import states
from taskq.histograms import Histogram, JobLatency, job_latencies, parse
from taskq.workers import live_workers

#: A scrape answers (with taskq_redis_up 0) within this bound even when Redis hangs.
SCRAPE_TIMEOUT_SECONDS = 2.0

#: counter name in the stats hash -> (metric name without _total, help)
COUNTERS: dict[str, tuple[str, str]] = {
    "enqueued": ("taskq_jobs_enqueued", "Jobs accepted into the queue"),
    "succeeded": ("taskq_jobs_succeeded", "Jobs that finished successfully"),
    "processed": ("taskq_jobs_processed", "Job executions that finished (succeeded or failed)"),
    "failed": ("taskq_jobs_failed", "Failed executions (retried or dead-lettered)"),
    "retried": ("taskq_jobs_retried", "Failed executions scheduled for another attempt"),
    "dead": ("taskq_jobs_dead_lettered", "Jobs dead-lettered for good"),
    "cancelled": ("taskq_jobs_cancelled", "Jobs cancelled"),
    "stale_acks": ("taskq_stale_acks", "Late acks refused because the lease had moved on"),
    "lost": ("taskq_jobs_lost_leases", "Leases that expired (worker died or was cut off)"),
    "redriven": ("taskq_jobs_redriven", "Dead-lettered jobs sent back to the queue"),
    "purged": ("taskq_jobs_purged", "Pending jobs deleted by a purge of the queue"),
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    up: bool
    queues: list[QueueStats]
    workers: int
    known_queues: int = 0
    #: queue -> live workers serving it (a declared queue at 0 accepts jobs nobody runs yet)
    serving: dict[str, int] = field(default_factory=dict)
    #: the queues that are paused (workers claim nothing new from them)
    paused: frozenset[str] = frozenset()
    latencies: list[JobLatency] = field(default_factory=list)
    #: "<method> <route> <status>" -> request durations
    http: dict[str, Histogram] = field(default_factory=dict)


async def snapshot(taskq: Taskq, known_tasks: Collection[str] = ()) -> Snapshot:
    """One round trip for the declared queues' stats, whatever names the registry holds: the
    endpoint is unauthenticated, so its cost must not grow with names clients once sent. (Queues
    that are no longer declared are counted in taskq_queues_known and listed by GET /queues.)
    Job histograms label tasks outside ``known_tasks`` (the registry) as one."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
            names = taskq.declared_queues()
            found = await states(taskq, await taskq.queues() if names is None else names)
            workers = await live_workers(taskq)
            serving = Counter(q for w in workers for q in w.queues)
            paused = frozenset(s.stats.queue for s in found if s.paused)
            stats = [s.stats for s in found]
            latencies = await job_latencies(taskq, [q.queue for q in stats], known_tasks)
            http = parse(await taskq.executor.run(plain("HGETALL", taskq.keys.http_metrics)), 1e-6)
            count = await taskq.queue_count()
            return Snapshot(True, stats, len(workers), count, dict(serving), paused, latencies, http)
    except (TimeoutError, RedisUnavailable, TaskqError):
        return Snapshot(False, [], 0)


class RedisCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("taskq_redis_up", "1 when Redis answered this scrape")
        up.add_metric([], 1.0 if self.snap.up else 0.0)
        yield up
        workers = GaugeMetricFamily("taskq_workers_live", "Workers whose registry entry is alive")
        workers.add_metric([], float(self.snap.workers))
        yield workers
        known = GaugeMetricFamily(
            "taskq_queues_known", "Queues in the registry, declared or not (more than declared: leftovers)"
        )
        known.add_metric([], float(self.snap.known_queues))
        yield known
        depth = GaugeMetricFamily("taskq_queue_jobs", "Jobs in the queue by state", labels=["queue", "state"])
        age = GaugeMetricFamily(
            "taskq_queue_oldest_pending_age_seconds",
            "Age of the oldest pending job (0 when none)",
            labels=["queue"],
        )
        serving = GaugeMetricFamily(
            "taskq_queue_workers",
            "Live workers serving the queue (0 with jobs pending: nobody runs them)",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "taskq_queue_paused", "1 while the queue is paused (workers claim nothing new)", labels=["queue"]
        )
        families = {
            name: CounterMetricFamily(metric, text, labels=["queue"])
            for name, (metric, text) in COUNTERS.items()
        }
        for q in self.snap.queues:
            for state, value in (
                ("pending", q.pending), ("scheduled", q.scheduled), ("running", q.running), ("dead", q.dead)
            ):  # fmt: skip
                depth.add_metric([q.queue, state], float(value))
            age.add_metric([q.queue], q.oldest_pending_age_seconds or 0.0)
            serving.add_metric([q.queue], float(self.snap.serving.get(q.queue, 0)))
            paused.add_metric([q.queue], 1.0 if q.queue in self.snap.paused else 0.0)
            for name, family in families.items():
                family.add_metric([q.queue], float(q.counters.get(name, 0)))
        yield depth
        yield age
        yield serving
        yield paused
        yield from families.values()
        yield from self.histograms()

    def histograms(self) -> Iterable[Metric]:
        jobs = {
            kind: HistogramMetricFamily(f"taskq_job_{kind}_seconds", text, labels=["queue", "task"])
            for kind, text in (
                ("wait", "From due (enqueued, or the delay or backoff over) to claimed by a worker"),
                ("run", "From claimed to finished (succeeded, failed or cancelled), per execution"),
            )
        }
        for lat in self.snap.latencies:
            h = lat.histogram
            jobs[lat.kind].add_metric([lat.queue, lat.task], h.cumulative(), h.sum)
        yield from jobs.values()
        http = HistogramMetricFamily(
            "taskq_http_request_duration_seconds",
            "API request duration by route template and status (sent every second by each process)",
            labels=["method", "route", "status"],
        )
        for series, h in sorted(self.snap.http.items()):
            labels = parse_series(series)
            if labels is not None:
                http.add_metric(list(labels), h.cumulative(), h.sum)
        yield http


def render(snap: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(snap))
    return generate_latest(registry)
