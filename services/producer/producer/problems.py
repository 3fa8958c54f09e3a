"""RFC 9457 problem details: the one shape of every error the API returns.

Handlers here turn every exception that can reach the edge (validation, HTTP, taskq's domain errors,
Redis outages, and anything unexpected) into ``application/problem+json``: never HTML, never a stack
trace. Pure ASGI middleware that answers before the app runs uses ``send_problem``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from redis import exceptions as rex
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Send

from taskq import (
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    PayloadTooLarge,
    QueueFull,
    QueueNotDeclared,
    RedisFull,
    RedisUnavailable,
    TaskqError,
    UnknownTask,
)

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("producer")


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description="Where the error is: ['body', 'args', 'subject'], ['query', 'wait']"
    )
    msg: str = Field(description="What is wrong, for people")
    type: str = Field(description="Machine-readable error kind (pydantic's error type)")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="URI identifying the problem type")
    title: str = Field(description="Short summary of the problem type")
    status: int = Field(ge=400, le=599, description="The HTTP status code")
    detail: str | None = Field(default=None, description="What went wrong in this occurrence")
    instance: str | None = Field(default=None, description="The request path")
    request_id: str | None = Field(default=None, description="Echo of X-Request-ID, for support")
    errors: list[FieldError] | None = Field(default=None, description="Validation errors, one per field")


class ProblemError(Exception):
    """Raise from a route to answer with a problem; ``slug`` names the problem type."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.slug = status, detail, slug
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors else None
        self.extra = dict(extra or {})


def problem_type(slug: str | None) -> str:
    # A non-resolvable but stable absolute URI (RFC 9457 section 3.1.1 allows it).
    return f"urn:taskq:problem:{slug}" if slug else "about:blank"


def problem_body(
    status: int,
    detail: str | None,
    *,
    slug: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    errors: Sequence[FieldError] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    doc: dict[str, Any] = {
        "type": problem_type(slug),
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        doc["instance"] = instance
    if request_id is not None:
        doc["request_id"] = request_id
    if errors:
        doc["errors"] = [e.model_dump() for e in errors]
    if extra:
        doc.update(extra)
    return orjson.dumps(doc)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    request: Request,
    status: int,
    detail: str | None,
    *,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[FieldError] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body = problem_body(
        status,
        detail,
        slug=slug,
        instance=request.url.path,
        request_id=request.scope.get("state", {}).get("request_id"),
        errors=errors,
        extra=extra,
    )
    return Response(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    path: str | None = None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer with a problem from pure ASGI code (middleware that runs before the app)."""
    body = problem_body(status, detail, slug=slug, instance=path, request_id=request_id)
    raw = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def field_errors(raw: Sequence[Any], prefix: Sequence[str | int] = ()) -> list[FieldError]:
    """pydantic/FastAPI error dicts to FieldErrors. The offending input is never echoed back."""
    out = []
    for err in raw:
        loc = [*prefix, *(p if isinstance(p, int) else str(p) for p in err.get("loc", ()))]
        out.append(
            FieldError(loc=loc, msg=str(err.get("msg", "invalid")), type=str(err.get("type", "invalid")))
        )
    return out


_DOMAIN: dict[type[TaskqError], tuple[int, str]] = {
    JobNotFound: (404, "job-not-found"),
    InvalidTransition: (409, "invalid-transition"),
    IdempotencyConflict: (422, "idempotency-conflict"),
    UnknownTask: (422, "unknown-task"),
    PayloadTooLarge: (413, "payload-too-large"),
    QueueFull: (429, "queue-full"),
    QueueNotDeclared: (422, "queue-not-declared"),
    RedisFull: (503, "redis-full"),
    RedisUnavailable: (503, "redis-unavailable"),
}

#: Seconds a client should wait before retrying after admission control or an outage.
RETRY_AFTER_QUEUE_FULL = "5"
RETRY_AFTER_UNAVAILABLE = "2"


def as_problem(exc: TaskqError) -> ProblemError:
    """The problem a taskq error becomes at the edge (one mapping for the routes and the fast path)."""
    status, slug = next((v for kind, v in _DOMAIN.items() if isinstance(exc, kind)), (500, "internal"))
    if status == 500:
        log.error("unexpected taskq error", extra={"error": repr(exc)})
        return ProblemError(500, "internal error", slug="internal")
    headers: dict[str, str] = {}
    if isinstance(exc, QueueFull):
        headers["Retry-After"] = RETRY_AFTER_QUEUE_FULL
    elif status == 503:
        headers["Retry-After"] = RETRY_AFTER_UNAVAILABLE
    return ProblemError(status, str(exc), slug=slug, headers=headers)


def _allowed_methods(request: Request, routes: Sequence[BaseRoute]) -> set[str]:
    matched = [
        route
        for route in [*request.app.router.routes, *routes]
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE
    ]
    # A literal path (/jobs/batch) is its own resource even where a template (/jobs/{job_id}) matches.
    literal = [route for route in matched if "{" not in route.path]
    return {method for route in (literal or matched) for method in route.methods or ()}


def install_handlers(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """``routes``: every API route (FastAPI keeps included routers' routes out of ``app.router.routes``)."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(
            request, 422, "the request is not valid", slug="validation", errors=field_errors(exc.errors())
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.url.path}"
        elif exc.status_code == 405:
            # Starlette names only the first route that matched the path; a path served by several
            # routes (GET and DELETE /jobs/{id}) allows all of their methods.
            methods = sorted(_allowed_methods(request, routes))
            headers["Allow"] = ", ".join(methods)
            detail = f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        return problem_response(request, exc.status_code, detail, headers=headers)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem_response(
            request,
            exc.status,
            exc.detail,
            slug=exc.slug,
            headers=exc.headers,
            errors=exc.errors,
            extra=exc.extra,
        )

    @app.exception_handler(TaskqError)
    async def _domain(request: Request, exc: TaskqError) -> Response:
        p = as_problem(exc)
        return problem_response(request, p.status, p.detail, slug=p.slug, headers=p.headers)

    @app.exception_handler(rex.ConnectionError)
    @app.exception_handler(rex.TimeoutError)
    async def _redis(request: Request, exc: Exception) -> Response:
        # A Redis call outside core's error translation: still an outage, not a bug.
        return problem_response(
            request,
            503,
            "Redis unavailable",
            slug="redis-unavailable",
            headers={"Retry-After": RETRY_AFTER_UNAVAILABLE},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after this so the server logs the traceback; the client gets no trace.
        return problem_response(request, 500, "internal error", slug="internal")
