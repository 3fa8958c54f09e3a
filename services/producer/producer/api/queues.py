"""/queues: depth by state, counters, the oldest pending job's age and the pause, per queue; and the
controls: pause and resume, purge the pending jobs, remove an empty and idle queue."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from producer.deps import StrictJSONRoute, TaskqDep
from producer.openapi import BODY, COMMON, problems
from producer.problems import FieldError, ProblemError
from producer.schemas import QueueView
from taskq import Taskq
from taskq.controls import QueueNotIdle, QueueState, is_known, purge, remove, set_paused, states
from taskq.keys import QUEUE_NAME_RE
from taskq.workers import live_workers

router = APIRouter(prefix="/queues", tags=["queues"], route_class=StrictJSONRoute)

QueueName = Annotated[str, Path(pattern=QUEUE_NAME_RE.pattern, description="Queue name")]


class QueueOverview(QueueView):
    paused: bool = Field(
        description="True: workers claim nothing new from it (jobs are still accepted, running ones "
        "finish); POST /queues/{queue}/resume to go on"
    )


class PurgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: str = Field(description="The queue's name again: a purge cannot be undone")


class Purged(BaseModel):
    queue: str
    purged: int = Field(description="Pending jobs deleted (also added to the queue's 'purged' counter)")


async def serving(taskq: Taskq) -> Counter[str]:
    """Live workers per queue they serve (a cost set by the fleet's size, not by queue names)."""
    return Counter(q for w in await live_workers(taskq) for q in w.queues)


def view(state: QueueState, declared: bool, workers: Counter[str]) -> QueueOverview:
    stats = state.stats
    return QueueOverview(
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
        paused=state.paused,
    )


async def known(taskq: Taskq, queue: str) -> str:
    """``queue`` when it is declared or in the registry; a 404 problem otherwise."""
    if not await is_known(taskq, queue):
        raise ProblemError(
            404, f"no queue named {queue!r} is declared or has ever had a job", slug="queue-not-found"
        )
    return queue


async def one(taskq: Taskq, queue: str) -> QueueOverview:
    [state] = await states(taskq, [queue])
    return view(state, taskq.accepts(queue), await serving(taskq))


async def paused_now(taskq: Taskq, queue: str, paused: bool) -> QueueOverview:
    """Pause or resume a known queue (404 otherwise) and answer it as it is now."""
    await set_paused(taskq, await known(taskq, queue), paused)
    return await one(taskq, queue)


@router.get("", response_model=list[QueueOverview], summary="Every known queue", responses=problems(*COMMON))
async def list_queues(taskq: TaskqDep) -> list[QueueOverview]:
    """The declared queues and every queue of the registry: one that is no longer declared still
    shows what it holds (``declared: false``), so no job is stranded out of sight."""
    names = sorted({*await taskq.queues(), *(taskq.declared_queues() or ())})
    workers = await serving(taskq)
    return [view(s, taskq.accepts(s.stats.queue), workers) for s in await states(taskq, names)]


@router.get(
    "/{queue}", response_model=QueueOverview, summary="One queue", responses=problems(404, 422, *COMMON)
)
async def get_queue(queue: QueueName, taskq: TaskqDep) -> QueueOverview:
    return await one(taskq, await known(taskq, queue))


@router.post(
    "/{queue}/pause",
    response_model=QueueOverview,
    summary="Pause a queue: workers claim nothing new from it",
    responses=problems(404, 422, *COMMON),
)
async def pause_queue(queue: QueueName, taskq: TaskqDep) -> QueueOverview:
    """Idempotent. Jobs keep being accepted (pending grows); jobs already running finish. The pause
    is kept in Redis: it outlives restarts of every producer and worker. Answers the queue."""
    return await paused_now(taskq, queue, True)


@router.post(
    "/{queue}/resume",
    response_model=QueueOverview,
    summary="Resume a paused queue",
    responses=problems(404, 422, *COMMON),
)
async def resume_queue(queue: QueueName, taskq: TaskqDep) -> QueueOverview:
    """Idempotent. An idle worker is woken at once and wakes the next while work is left."""
    return await paused_now(taskq, queue, False)


@router.post(
    "/{queue}/purge",
    response_model=Purged,
    summary="Delete every pending job of a queue",
    responses=problems(404, *BODY, *COMMON),
)
async def purge_queue(
    queue: QueueName, taskq: TaskqDep, body: Annotated[PurgeRequest | None, Body()] = None
) -> Purged:
    """Confirmed by the body ``{"confirm": "<queue>"}``. Deletes the queued jobs (their records, and
    idempotency keys that name them: a repeat of such a request enqueues it again); scheduled
    (delayed or backing off) and running jobs stay. Bounded batches, each atomic: jobs enqueued
    while it runs may be purged too."""
    await known(taskq, queue)
    if body is None or body.confirm != queue:
        got = "no confirmation" if body is None else f"confirm is {body.confirm!r}"
        msg = f'a purge cannot be undone: send {{"confirm": "{queue}"}} to confirm it ({got})'
        raise ProblemError(
            422,
            msg,
            slug="purge-not-confirmed",
            errors=[FieldError(loc=["body", "confirm"], msg=msg, type="value_error")],
        )
    return Purged(queue=queue, purged=await purge(taskq, queue))


@router.delete(
    "/{queue}",
    status_code=204,
    summary="Remove an empty, idle queue from the registry",
    responses=problems(404, 409, 422, *COMMON),
)
async def delete_queue(queue: QueueName, taskq: TaskqDep) -> Response:
    """Only a queue with no pending, scheduled, running or dead job that no live worker serves (409
    otherwise): its registry entry and keys (counters, pause) are deleted, so it leaves GET /queues.
    A declared queue is still listed after, as declared, with zeros."""
    try:
        await remove(taskq, await known(taskq, queue))
    except QueueNotIdle as exc:
        raise ProblemError(409, str(exc), slug="queue-not-idle") from exc
    return Response(status_code=204)
