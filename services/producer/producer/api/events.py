"""Server-Sent Events: one job's events (``GET /jobs/{id}/events``) and every change of some queues
(``GET /events``), read from the queues' event streams (``taskq.job_events``).

A frame is ``id: <id>``, ``event: <type>`` (queued, running, progress, succeeded...) and ``data:``
the event as JSON (id, queue, job_id, type, status, attempt, at, and extras). For one job the SSE id
is the event id (the stream entry id, or '<entry id>:<index>' for an event of a batch entry: one
entry holds a script call's run of events of one type, e.g. a claim's 'running'); for ``/events`` it
is a cursor over the queues followed ('q1=<id>,q2=<id>'), because entry ids only compare within one
queue's stream. A client sends its last id back as ``Last-Event-ID`` and gets exactly the events
after it. An id that is malformed is a 422 before any stream starts; an id whose successors may have
been trimmed out of the window (or that this Redis never gave) is answered with ``event: reset``
first and then a full resend: the job's events from its creation, or the queue's whole window. Never
a silent gap.

Errors come before the stream: 401 (AccessGuard), 404 unknown job, 422 bad Last-Event-ID or queue,
503 when the process serves ``SSE_MAX_STREAMS`` streams already. While idle, a comment line every
``HEARTBEAT_SECONDS`` keeps proxies from closing the connection (and finds a client that went away).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import StringConstraints
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from producer.deps import JobId, TaskqDep
from producer.events import EventStreams
from producer.openapi import COMMON, problems
from producer.problems import FieldError, ProblemError
from producer.submit import check_queue, raise_invalid
from taskq import Job, JobNotFound, Taskq
from taskq.job_events import (
    Cursor,
    JobEvent,
    entry_of,
    last_id,
    parse_event_id,
    read_after,
    read_blocking,
    window,
)
from taskq.keys import QUEUE_NAME_RE, QueueKeys, validate_queue_name

router = APIRouter(tags=["events"])

#: Idle time after which a comment goes out (and a followed job's existence is checked again).
HEARTBEAT_SECONDS = 10.0
#: A job's replay starts this long before its creation time (the producer's clock, Redis's ids).
REPLAY_MARGIN_MS = 60_000
#: Entries per read; a replay pages through the window this many at a time.
PAGE = 500
#: Queues one /events stream follows at most (its cursor names each).
MAX_QUEUES = 64
_RETRY = b"retry: 2000\n\n"
_KEEPALIVE = b": keep-alive\n\n"
_SSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A text/event-stream",
        # One event as an SSE client parses it (OpenAPI 3.1 has no stream type; schemathesis and
        # OpenAPI 3.2's itemSchema read the schema per event): `data` is a JSON event (docs/events.md).
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string"},
                        "data": {"type": "string"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    }
}

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="Resume after this event id (the SSE `id:` last received); empty: from the start",
    ),
]


class EventStreamResponse(StreamingResponse):
    """A text/event-stream that gives its stream slot back however it ends (done, error, client gone)."""

    def __init__(self, body: AsyncIterator[bytes], streams: EventStreams) -> None:
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._streams.release()


def frame(event: JobEvent, sse_id: str) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        sse_id.encode(),
        event.type.encode(),
        orjson.dumps(event.document()),
    )


def reset_frame(detail: dict[str, Any]) -> bytes:
    return b"event: reset\ndata: %s\n\n" % orjson.dumps(detail)


def _bad_id(exc: ValueError) -> ProblemError:
    return ProblemError(422, f"malformed Last-Event-ID: {exc}", slug="bad-last-event-id")


def _streams(request: Request) -> EventStreams:
    streams: EventStreams = request.app.state.event_streams
    return streams


async def _blocking(redis: Any, cursors: dict[str, str], keys: dict[str, QueueKeys]) -> list[JobEvent]:
    # The read has no socket timeout (it blocks on purpose): bound it, so a Redis that stops answering
    # ends the stream (the client resumes with Last-Event-ID) instead of holding it forever.
    async with asyncio.timeout(HEARTBEAT_SECONDS + 5):
        return await read_blocking(redis, cursors, keys, int(HEARTBEAT_SECONDS * 1000), PAGE)


@router.get(
    "/jobs/{job_id}/events",
    summary="Follow one job's events (Server-Sent Events)",
    response_class=Response,
    responses={**_SSE, **problems(404, 422, *COMMON)},
)
async def job_events(
    job_id: JobId, request: Request, taskq: TaskqDep, last_event_id: LastEventId = None
) -> Response:
    """Replays the job's events still in its queue's window, then streams new ones; ends after the job
    succeeded, failed, was cancelled or purged (at once when it had ended already)."""
    job = await taskq.get_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    after = None
    if last_event_id is not None and last_event_id.strip():  # an empty header is no header
        after = last_event_id.strip()
        try:
            parse_event_id(after)
        except ValueError as exc:
            raise _bad_id(exc) from None
    qk = taskq.queue_keys(job.queue)
    start = f"{max(0, int(job.created_at.timestamp() * 1000) - REPLAY_MARGIN_MS)}-0"
    reset = after is not None and (await window(taskq.redis, qk)).lost_after(entry_of(after))
    streams = _streams(request)
    streams.reserve()  # released by the response, however it ends: nothing may raise in between
    body = _follow_job(taskq.redis, streams.redis, qk, job, start if reset or after is None else after, reset)
    return EventStreamResponse(body, streams)


async def _follow_job(
    redis: Any, blocking: Any, qk: QueueKeys, job: Job, cursor: str, reset: bool
) -> AsyncIterator[bytes]:
    """``redis`` reads (the pooled command client); ``blocking`` waits (the streams' own connections)."""
    yield _RETRY
    if reset:
        yield reset_frame({"reason": "Last-Event-ID is older than the event window", "resend": "job"})
    final = False
    while True:  # the replay, a page at a time (through a final event: a dead job may be re-driven)
        page = await read_after(redis, qk, cursor, PAGE)
        for event in page:
            cursor = event.id
            if event.job_id == job.id:
                yield frame(event, event.id)
                final = event.final
        if len(page) < PAGE:
            break
    if final or job.status.terminal:
        return  # over (or over before we were asked, its last event out of the window)
    keys = {qk.queue: qk}
    while True:
        events = await _blocking(blocking, {qk.queue: cursor}, keys)
        if not events:
            yield _KEEPALIVE
            if not await redis.exists(qk.job(job.id)):
                return  # deleted or expired: no event will ever come
            continue
        for event in events:
            cursor = event.id
            if event.job_id == job.id:
                yield frame(event, event.id)
                if event.final:
                    return


@router.get(
    "/events",
    summary="Follow every job change of some queues (Server-Sent Events)",
    response_class=Response,
    responses={**_SSE, **problems(422, *COMMON)},
)
async def queue_events(
    request: Request,
    taskq: TaskqDep,
    queue: Annotated[
        list[Annotated[str, StringConstraints(pattern=QUEUE_NAME_RE.pattern)]] | None,
        Query(description="A queue to follow (repeat for several); none: every declared queue"),
    ] = None,
    last_event_id: LastEventId = None,
) -> Response:
    """Streams from now (or from ``Last-Event-ID``) until the client leaves. Without ``queue`` it
    follows the declared queues (with ``QUEUES=*``, the registry, re-read while idle: a new queue
    is followed from its first event)."""
    if queue:
        errors: list[FieldError] = []
        for index, name in enumerate(queue):
            try:
                validate_queue_name(name)
            except ValueError as exc:
                errors.append(FieldError(loc=["query", "queue", index], msg=str(exc), type="value_error"))
                continue
            errors += check_queue(taskq, name, ["query", "queue", index])[:1]
        raise_invalid(errors)
        names, registry = list(dict.fromkeys(queue)), False
    else:
        declared = taskq.declared_queues()
        names, registry = (declared, False) if declared is not None else (await taskq.queues(), True)
    if len(names) > MAX_QUEUES:
        raise ProblemError(
            422, f"{len(names)} queues: name at most {MAX_QUEUES} with ?queue=", slug="too-many-queues"
        )
    cursor = None
    if last_event_id is not None and last_event_id.strip():  # an empty header is no header
        try:
            cursor = Cursor.parse(last_event_id)
        except ValueError as exc:
            raise _bad_id(exc) from None
    # Where each queue starts is decided here, before the answer: "from now" is when it was asked.
    keys = {q: taskq.queue_keys(q) for q in names}
    positions: dict[str, str] = {}
    lost: list[str] = []
    for q, qk in keys.items():
        seen = cursor.positions.get(q) if cursor else None
        if seen is None:
            positions[q] = await last_id(taskq.redis, qk)  # not in the cursor: from now on
        elif (await window(taskq.redis, qk)).lost_after(entry_of(seen)):
            lost.append(q)
            positions[q] = "0-0"  # the whole window again, after the reset
        else:
            positions[q] = seen
    streams = _streams(request)
    streams.reserve()  # released by the response, however it ends: nothing may raise in between
    body = _follow_queues(streams.redis, taskq, keys, positions, lost, registry)
    return EventStreamResponse(body, streams)


async def _follow_queues(
    blocking: Any,
    taskq: Taskq,
    keys: dict[str, QueueKeys],
    positions: dict[str, str],
    lost: list[str],
    registry: bool,
) -> AsyncIterator[bytes]:
    yield _RETRY
    if lost:
        yield reset_frame({"reason": "Last-Event-ID is older than the event window", "queues": lost})
    while True:
        if not keys:
            events: list[JobEvent] = []
            await asyncio.sleep(HEARTBEAT_SECONDS)  # nothing to follow yet: wait for a queue to appear
        else:
            events = await _blocking(blocking, positions, keys)
        if not events:
            yield _KEEPALIVE
            if registry:
                for q in await taskq.queues():
                    if q not in keys and len(keys) < MAX_QUEUES:
                        keys[q], positions[q] = taskq.queue_keys(q), "0-0"  # new: from its first event
            continue
        for event in events:
            positions[event.queue] = event.id
            yield frame(event, Cursor(positions).text())
