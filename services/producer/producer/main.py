"""The FastAPI app: ``create_app`` is the factory uvicorn serves (``producer.main:create_app``).

Redis clients are opened in the lifespan and closed with it: one pooled client for commands (short
timeouts, so an outage is a 503 in about a second) and one for the shared event subscription.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from producer.api import ROUTERS
from producer.coalesce import Coalescer
from producer.dashboard import router as dashboard_router
from producer.events import EventHub, EventStreams
from producer.fastpath import FastPath
from producer.http_metrics import HttpMetrics
from producer.logs import AccessLog
from producer.middleware import AccessGuard, BodyGuard, RequestContext
from producer.openapi import install_openapi
from producer.problems import install_handlers
from producer.settings import ProducerSettings
from taskq import Taskq, Wire, connect

DESCRIPTION = """\
Accepts background jobs instantly and reliably: validated against the task contract, enqueued in
Redis by one atomic script, run at least once by the workers. Every error is
`application/problem+json` (RFC 9457).
"""


def create_app(settings: ProducerSettings | None = None, *, access_log: AccessLog | None = None) -> FastAPI:
    """The app. ``access_log`` receives one dict per request (default: JSON lines on stderr)."""
    settings = settings or ProducerSettings()
    access = access_log or AccessLog()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(settings, max_connections=settings.redis_max_connections)
        subscriber = connect(settings, blocking=True, max_connections=2)
        # Enqueues ride one lean pipelined connection (concurrent calls share it, replies in order).
        wire = Wire.from_settings(settings, client_name="taskq-producer")
        app.state.taskq = Taskq.from_settings(redis, settings, wire=wire)
        app.state.coalescer = Coalescer(app.state.taskq)
        app.state.events = EventHub(subscriber, app.state.taskq.keys.events_pattern)
        app.state.events.start()
        # The SSE routes' connections: blocking reads (XREAD BLOCK), one per open stream.
        app.state.event_streams = EventStreams(
            connect(settings, blocking=True, max_connections=settings.sse_max_streams),
            settings.sse_max_streams,
        )
        try:
            yield
        finally:
            await app.state.coalescer.close()
            await app.state.events.stop()
            await app.state.event_streams.aclose()
            access.flush()
            await subscriber.aclose()
            await wire.aclose()
            await redis.aclose()

    app = FastAPI(
        title="taskq producer",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        # No OpenTelemetry here: without this FastAPI asks for a tracer provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.registry = settings.tasks()
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(dashboard_router)
    install_handlers(app, [route for router in ROUTERS for route in router.routes])
    install_openapi(app, auth=settings.api_token is not None, registry=app.state.registry)
    # add_middleware wraps: the last added is the outermost.
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app.add_middleware(FastPath)
    app.add_middleware(
        AccessGuard,
        token=token,
        per_minute=settings.rate_limit_per_minute,
        trusted_proxies=settings.trusted_proxies,
    )
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext, access_log=access)
    app.add_middleware(HttpMetrics)  # outermost: times everything, guards' refusals included
    return app
