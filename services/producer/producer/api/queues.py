"""/queues: depth by state, counters and the oldest pending job's age, per queue."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Path

from producer.deps import StrictJSONRoute, TaskqDep
from producer.openapi import COMMON, problems
from producer.problems import ProblemError
from producer.schemas import QueueView
from taskq import QueueStats, Taskq
from taskq.keys import QUEUE_NAME_RE
from taskq.workers import live_workers

router = APIRouter(prefix="/queues", tags=["queues"], route_class=StrictJSONRoute)


async def serving(taskq: Taskq) -> Counter[str]:
    """Live workers per queue they serve (a cost set by the fleet's size, not by queue names)."""
    return Counter(q for w in await live_workers(taskq) for q in w.queues)


def view(stats: QueueStats, declared: bool, workers: Counter[str]) -> QueueView:
    return QueueView(
        queue=stats.queue,
        declared=declared,
        workers=workers[stats.queue],
        pending=stats.pending,
        scheduled=stats.scheduled,
        running=stats.running,
        dead=stats.dead,
        processed_total=stats.processed_total,
        failed_total=stats.failed_total,
        oldest_pending_age_seconds=stats.oldest_pending_age_seconds,
        counters=stats.counters,
    )


@router.get("", response_model=list[QueueView], summary="Every known queue", responses=problems(*COMMON))
async def list_queues(taskq: TaskqDep) -> list[QueueView]:
    """The declared queues and every queue of the registry: one that is no longer declared still
    shows what it holds (``declared: false``), so no job is stranded out of sight."""
    names = sorted({*await taskq.queues(), *(taskq.declared_queues() or ())})
    workers = await serving(taskq)
    return [view(s, taskq.accepts(s.queue), workers) for s in await taskq.all_stats(names)]


@router.get("/{queue}", response_model=QueueView, summary="One queue", responses=problems(404, 422, *COMMON))
async def get_queue(
    queue: Annotated[str, Path(pattern=QUEUE_NAME_RE.pattern, description="Queue name")], taskq: TaskqDep
) -> QueueView:
    if queue not in (taskq.declared_queues() or ()) and queue not in await taskq.queues():
        raise ProblemError(
            404, f"no queue named {queue!r} is declared or has ever had a job", slug="queue-not-found"
        )
    return view(await taskq.stats(queue), taskq.accepts(queue), await serving(taskq))
