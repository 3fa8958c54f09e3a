"""/jobs: enqueue one job or a batch, read a job (optionally waiting for its end), cancel one."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.convertors import Convertor, register_url_convertor

from producer.deps import EventsDep, IdempotencyKeyDep, JobId, RegistryDep, StrictJSONRoute, TaskqDep
from producer.openapi import BODY, COMMON, problems
from producer.problems import FieldError, ProblemError
from producer.schemas import BatchAccepted, BatchRequest, CancelResult, JobRequest
from producer.submit import (
    check_queue,
    check_task,
    enqueue_one,
    fingerprint,
    now_ms,
    raise_invalid,
    to_enqueue,
    view_of,
)
from taskq import EnqueueRequest, Job, JobNotFound, JobStatus


class _JobIdConvertor(Convertor[str]):
    """Any segment but "batch": /jobs/batch is its own resource (a GET there is a 405, not a
    malformed id), while a malformed id still reaches the route and gets its 422."""

    regex = r"(?!batch$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("job_id", _JobIdConvertor())
router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=StrictJSONRoute)
MAX_WAIT_SECONDS = 60


def _json(
    model: Job | BatchAccepted | CancelResult, status: int, headers: dict[str, str] | None = None
) -> Response:
    # Serialized by pydantic-core directly: the route's response_model documents the shape, and
    # skipping FastAPI's re-validation of a model we just built is most of the hot path's savings.
    return Response(
        model.model_dump_json(), status_code=status, headers=headers, media_type="application/json"
    )


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Enqueue a job",
    responses={
        200: {"model": Job, "description": "Idempotent repeat: the job the Idempotency-Key already named"},
        400: problems(400)[400],
        **problems(*BODY, *COMMON),
    },
)
async def create_job(
    body: JobRequest, taskq: TaskqDep, registry: RegistryDep, key: IdempotencyKeyDep
) -> Response:
    """Validate the task and its args, then enqueue in one atomic script. ``Location`` names the job."""
    raise_invalid(
        check_task(registry, body.task, body.args, ["body"]) + check_queue(taskq, body.queue, ["body"])
    )
    fp = fingerprint("POST /jobs", body) if key else None
    req, done, now = await enqueue_one(taskq, registry, body, key, fp)
    job = await view_of(taskq, req, done, now)
    return _json(job, 202 if done.created else 200, {"Location": f"/jobs/{job.id}"})


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchAccepted,
    summary="Enqueue up to 1,000 jobs in one round trip: all or none",
    responses={
        200: {"model": BatchAccepted, "description": "Idempotent repeat of an earlier batch"},
        **problems(400, *BODY, *COMMON),
    },
)
async def create_batch(
    body: BatchRequest, taskq: TaskqDep, registry: RegistryDep, key: IdempotencyKeyDep
) -> Response:
    """Every job is checked first (422 lists each bad item by index); then all are enqueued.

    Every job must go to one queue (named, or the tasks' own): a batch is all-or-none because it is
    one queue's atomic write, and two queues' writes cannot be one (on a Redis Cluster their keys
    live in different slots). With an ``Idempotency-Key`` each job gets the key suffixed with its
    index, so a repeat of the batch returns the same jobs and a different request under the same
    key, on any queue or route, is refused (422).
    """
    errors = []
    for index, item in enumerate(body.jobs):
        errors += check_task(registry, item.task, item.args, ["body", "jobs", index])
        errors += check_queue(taskq, item.queue, ["body", "jobs", index])
    raise_invalid(errors)
    now = now_ms()
    fp = fingerprint("POST /jobs/batch", body) if key else None
    reqs = [
        to_enqueue(item, registry, now, f"{key}#{index}" if key else None, fp)
        for index, item in enumerate(body.jobs)
    ]
    raise_invalid(_one_queue(reqs))
    if key and fp:
        await taskq.claim_idempotency_key(key, reqs[0].queue, fp, max(r.delay_ms for r in reqs))
    done = await taskq.enqueue_many(reqs)
    jobs = await asyncio.gather(*(view_of(taskq, req, d, now) for req, d in zip(reqs, done, strict=True)))
    created = any(d.created for d in done)
    return _json(BatchAccepted(jobs=list(jobs)), 202 if created else 200)


def _one_queue(reqs: list[EnqueueRequest]) -> list[FieldError]:
    first = reqs[0].queue
    return [
        FieldError(
            loc=["body", "jobs", index, "queue"],
            msg=f"a batch goes to one queue: this job's is {req.queue!r}, the first job's {first!r}; "
            "send one batch per queue",
            type="one_queue",
        )
        for index, req in enumerate(reqs)
        if req.queue != first
    ]


@router.get(
    "/{job_id:job_id}", response_model=Job, summary="Read a job", responses=problems(404, 422, *COMMON)
)
async def get_job(
    job_id: JobId,
    taskq: TaskqDep,
    events: EventsDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Hold the request up to this many seconds until the job ends",
        ),
    ] = 0,
) -> Response:
    """With ``wait``, the request returns as soon as the job is succeeded, failed or cancelled (woken by
    the job's event, no polling), or after ``wait`` seconds with the job as it is then."""
    deadline = time.monotonic() + wait
    graced = False
    while True:
        with events.waiter(job_id) as woken:
            job = await taskq.get_job(job_id)
            if job is None:
                raise JobNotFound(job_id)
            remaining = deadline - time.monotonic()
            live = events.ready.is_set()
            if job.status.terminal or remaining <= 0 or (graced and not live):
                return _json(job, 200)
            if not live:
                # Only a live subscription sees the job's event (a producer just started, or
                # resubscribing): give it a short grace once, read again, then answer with what is.
                graced = True
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, 1.0)):
                        await events.ready.wait()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await woken


@router.delete(
    "/{job_id:job_id}",
    response_model=CancelResult,
    summary="Cancel a job",
    responses={
        202: {"model": CancelResult, "description": "Running: cancellation requested"},
        **problems(404, 409, 422, *COMMON),
    },
)
async def cancel_job(job_id: JobId, taskq: TaskqDep) -> Response:
    """Queued or scheduled: cancelled at once (200). Running: the worker is asked to stop it at its
    next heartbeat (202). Already finished: 409."""
    status = await taskq.cancel(job_id)
    job = await taskq.get_job(job_id)
    if job is None:
        raise ProblemError(404, f"job {job_id} not found", slug="job-not-found")
    cancelled = status is JobStatus.CANCELLED
    return _json(CancelResult(job=job, cancelled=cancelled), 200 if cancelled else 202)
