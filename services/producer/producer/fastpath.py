"""The enqueue hot path: POST /send-email and POST /jobs served in pure ASGI when the request is plain.

FastAPI's routing, dependency solving and body handling cost more CPU than everything else an enqueue
does (py-spy), and these two endpoints are the ones taken under load. A plain request (no
Idempotency-Key, a body that parses and validates) is enqueued here with the very functions the
routes use, and answered with the same bytes. Anything else (a bad body, an idempotent request,
another route) is replayed, body included, into the FastAPI app, so every error and every edge case
has one implementation: the routes. Auth, the rate limit, the body limit and the access log all sit
outside this middleware and apply to both paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer.problems import as_problem, send_problem
from producer.schemas import JobRequest
from producer.submit import check_task, created_view, email_accepted, email_job, now_ms, to_enqueue
from taskq import EnqueueRequest, Job, Taskq, TaskqError, TaskRegistry
from taskq.builtin_tasks import SendEmailArgs

_HOT = frozenset({"/send-email", "/jobs"})
_JSON = (b"content-type", b"application/json")


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A receive that hands the already-read body to the app, then defers to the real one."""
    replayed = False

    async def receive_again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


def _plain(path: str, body: bytes, registry: TaskRegistry, now: int) -> tuple[EnqueueRequest, bool] | None:
    """The job to enqueue, or None when the routes must answer (invalid input of any kind)."""
    try:
        doc = orjson.loads(body)
        if not isinstance(doc, dict):
            return None
        if path == "/send-email":
            return to_enqueue(email_job(SendEmailArgs.model_validate(doc)), registry, now), True
        job = JobRequest.model_validate(doc)
    except (ValueError, ValidationError):  # orjson.JSONDecodeError is a ValueError
        return None
    if check_task(registry, job.task, job.args, ["body"]):
        return None
    return to_enqueue(job, registry, now), False


class FastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in _HOT
            or any(name == b"idempotency-key" for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:  # the body limit is enforced by BodyGuard's receive, outside this middleware
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        state = scope["app"].state
        now = now_ms()
        plain = _plain(scope["path"], body, state.registry, now)
        if plain is None or not state.taskq.accepts(plain[0].queue):
            # Invalid, or an undeclared queue: the route's 422 lists the accepted ones.
            await self.app(scope, _replay(body, receive), send)
            return
        req, is_email = plain
        taskq: Taskq = state.taskq
        try:
            # A payload over the size limit is refused here, for this request alone (the coalescer
            # sizes each job before it joins a batch).
            job_id = (await state.coalescer.enqueue(req)).id
        except TaskqError as exc:
            p = as_problem(exc)
            rid = scope.get("state", {}).get("request_id")
            await send_problem(
                send, p.status, p.detail, slug=p.slug, path=scope["path"], request_id=rid, headers=p.headers
            )
            return
        if is_email:
            out = email_accepted(job_id)
        else:
            view: Job = created_view(taskq, req, job_id, now)
            out = view.model_dump_json().encode()
        headers = [
            _JSON,
            (b"content-length", str(len(out)).encode()),
            (b"location", f"/jobs/{job_id}".encode()),
        ]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": out})
