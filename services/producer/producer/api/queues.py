"""/queues: depth by state, counters and the oldest pending job's age, per queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from producer.deps import StrictJSONRoute, TaskqDep
from producer.openapi import COMMON, problems
from producer.problems import ProblemError
from producer.schemas import QueueView
from taskq import QueueStats
from taskq.keys import QUEUE_NAME_RE

router = APIRouter(prefix="/queues", tags=["queues"], route_class=StrictJSONRoute)


def view(stats: QueueStats) -> QueueView:
    return QueueView(
        queue=stats.queue,
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
    return [view(s) for s in await taskq.all_stats()]


@router.get("/{queue}", response_model=QueueView, summary="One queue", responses=problems(404, 422, *COMMON))
async def get_queue(
    queue: Annotated[str, Path(pattern=QUEUE_NAME_RE.pattern, description="Queue name")], taskq: TaskqDep
) -> QueueView:
    if queue not in await taskq.queues():
        raise ProblemError(404, f"no queue named {queue!r} has ever had a job", slug="queue-not-found")
    return view(await taskq.stats(queue))
