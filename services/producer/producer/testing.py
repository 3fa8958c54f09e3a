"""Test helpers for the producer, in the package like ``starlette.testclient``: the real app with its
lifespan behind an httpx client, and a check that a response is an RFC 9457 problem.

Needs httpx (a dev dependency); nothing in the service imports this module."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from producer import ProducerSettings, create_app
from producer.http_metrics import HttpMetrics
from producer.logs import AccessLog

EMAIL = {"recipient_email": "ada@example.com", "subject": "Hello", "body": "Hi Ada"}


def make_settings(redis_url: str, prefix: str, **overrides: Any) -> ProducerSettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "taskq_prefix": prefix,
        "debug_tasks": True,
        "lease_seconds": 2.0,
        "heartbeat_seconds": 0.5,
        # The suites isolate tests by random queue names; production refuses "*" (a test of it sets QUEUES).
        "queues": "" if overrides.get("environment") == "production" else "*",
        **overrides,
    }
    return ProducerSettings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def serve(
    settings: ProducerSettings, access_log: AccessLog | None = None, **client_kw: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, behind an httpx client on the ASGI transport."""
    app = create_app(settings, access_log=access_log)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", **client_kw) as client:
                yield client
    finally:
        # The router's lifespan skips the middlewares' view of the shutdown: end the request-metrics
        # flush loop here, or it outlives the app (and retries against a Redis a test stopped).
        node: Any = app.middleware_stack
        while node is not None:
            if isinstance(node, HttpMetrics):
                await node.aclose()
            node = getattr(node, "app", None)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with this status, and no stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in response.text
    return body
