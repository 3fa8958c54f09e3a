"""/dead-letter: inspect jobs that failed for good, re-drive them, or purge them."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response

from producer.deps import JobId, StrictJSONRoute, TaskqDep
from producer.openapi import COMMON, problems
from producer.problems import ProblemError
from producer.schemas import DeadLetterPage
from taskq import Job, JobNotFound, JobStatus
from taskq.keys import QUEUE_NAME_RE

router = APIRouter(prefix="/dead-letter", tags=["dead-letter"], route_class=StrictJSONRoute)

QueueParam = Annotated[str, Query(pattern=QUEUE_NAME_RE.pattern, description="Queue name")]
CURSOR_PATTERN = r"^[0-9]{1,16}:[0-9]{1,9}$"


@router.get(
    "",
    response_model=DeadLetterPage,
    summary="Dead-lettered jobs, newest first",
    responses=problems(422, *COMMON),
)
async def list_dead(
    taskq: TaskqDep,
    queue: QueueParam = "default",
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 50,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")
    ] = None,
) -> DeadLetterPage:
    page = await taskq.dead_letters(queue, limit=limit, cursor=cursor)
    found = await asyncio.gather(*(taskq.get_job(job_id, queue) for job_id in page.job_ids))
    # A job whose hash expired between the two reads is simply left out of the page.
    return DeadLetterPage(
        queue=queue, items=[j for j in found if j is not None], next_cursor=page.next_cursor
    )


async def _dead_job(taskq: TaskqDep, job_id: str) -> Job:
    job = await taskq.get_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    if job.status is not JobStatus.FAILED:
        raise ProblemError(409, f"job {job_id} is {job.status.value}, not dead-lettered", slug="not-dead")
    return job


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=Job,
    summary="Re-drive a dead-lettered job",
    responses=problems(404, 409, 422, *COMMON),
)
async def retry_dead(job_id: JobId, taskq: TaskqDep) -> Response:
    """Back to the queue with a fresh attempt budget (202 with the job, now queued)."""
    job = await _dead_job(taskq, job_id)
    await taskq.retry_dead(job_id, job.queue)
    again = await taskq.get_job(job_id, job.queue) or job
    return Response(
        again.model_dump_json(),
        status_code=202,
        headers={"Location": f"/jobs/{job_id}"},
        media_type="application/json",
    )


@router.delete(
    "/{job_id}",
    status_code=204,
    summary="Purge a dead-lettered job",
    responses=problems(404, 409, 422, *COMMON),
)
async def purge_dead(job_id: JobId, taskq: TaskqDep) -> Response:
    job = await _dead_job(taskq, job_id)
    await taskq.purge_dead(job_id, job.queue)
    return Response(status_code=204)
