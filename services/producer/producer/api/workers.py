"""/workers: the live fleet, from the TTL'd registry every worker refreshes with its heartbeat."""

from __future__ import annotations

from fastapi import APIRouter

from producer.deps import StrictJSONRoute, TaskqDep
from producer.openapi import COMMON, problems
from taskq import WorkerInfo
from taskq.workers import live_workers

router = APIRouter(prefix="/workers", tags=["workers"], route_class=StrictJSONRoute)


@router.get(
    "",
    response_model=list[WorkerInfo],
    summary="Live workers: id, host, start, last heartbeat, concurrency, jobs in hand, tasks they run",
    responses=problems(*COMMON),
)
async def list_workers(taskq: TaskqDep) -> list[WorkerInfo]:
    return await live_workers(taskq)
