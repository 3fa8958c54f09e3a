"""API request latency, ``taskq_http_request_duration_seconds{method,route,status}``, counted in Redis.

Every producer process (API_WORKERS runs several behind one port, and a deployment may run several
containers) adds its counts to one hash (``GlobalKeys.http_metrics``), so a scrape answered by any
of them is right for all. On the request path a process only adds to a dict; a background task sends
the increments every ``FLUSH_SECONDS`` in one pipelined round trip (HINCRBY per changed field), and
once more at shutdown. A scrape may therefore lag the other processes by up to ``FLUSH_SECONDS``.

The route label is the route's template (``/jobs/{job_id}``), never the raw path: a request that
matched no route is ``UNMATCHED``. Requests answered before routing (the fast path, 401, 429, 413)
are matched against the routes here, the static ones from a cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskq import GlobalKeys, connect
from taskq.histograms import bucket_index

#: How often a process sends its counts to Redis (the most a scrape lags behind the others).
FLUSH_SECONDS = 1.0
#: The route label of a request no route matched (bounded: never the raw path).
UNMATCHED = "(unmatched)"
#: Methods labelled as they are; any other token a client sends is counted as "OTHER" (bounded).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: A process's counts are kept across failed flushes (Redis down) this many times, then dropped: a
#: process whose Redis is gone for good (shutdown in tests) must not retry forever.
MAX_FAILED_FLUSHES = 30

log = logging.getLogger("producer.http_metrics")


def series_of(method: str, route: str, status: int) -> str:
    """The series name in the hash; ``parse_series`` reads it back."""
    return f"{method} {route} {status}"


def parse_series(series: str) -> tuple[str, str, str] | None:
    method, _, rest = series.partition(" ")
    route, _, status = rest.rpartition(" ")
    return (method, route, status) if method and route and status.isdigit() else None


def _template(route: Any) -> str:
    """``/jobs/{job_id}``: the path with its parameters' names, convertors left out."""
    return str(getattr(route, "path_format", route.path))


def _templates(routes: Iterable[Any]) -> list[tuple[re.Pattern[str], str]]:
    """(path regex, template) of every route, those of included routers too, in routing order: a
    request answered before routing is matched here (once per parameterised path)."""
    out: list[tuple[re.Pattern[str], str]] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)  # FastAPI's included routers
        if contexts is not None:
            out.extend((compile_path(c.path)[0], str(c.path_format)) for c in contexts())
        elif getattr(route, "path_regex", None) is not None:
            out.append((route.path_regex, _template(route)))
    return out


class HttpMetrics:
    """Times every HTTP request from the first byte in to the last byte out (everything inside)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: field -> increment not yet sent (bucket counts, sums in microseconds)
        self.pending: dict[str, int] = {}
        self.static_routes: dict[str, str] = {}
        self.templates: list[tuple[re.Pattern[str], str]] | None = None
        self.flusher: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._on_shutdown(scope, receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.observe(scope, status, time.perf_counter() - started)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        try:
            route = self.route_of(scope)
        except Exception:  # a router this code does not know: count the request, never fail it
            route = UNMATCHED
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        base = series_of(method, route, status)
        bucket = f"{base}:{bucket_index(seconds * 1000)}"
        total = f"{base}:sum"
        pending = self.pending
        pending[bucket] = pending.get(bucket, 0) + 1
        pending[total] = pending.get(total, 0) + round(seconds * 1_000_000)
        if self.flusher is None:
            self.flusher = asyncio.get_running_loop().create_task(self._flush_loop(scope["app"]))

    def route_of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return _template(route)
        path: str = scope["path"]
        found = self.static_routes.get(path)
        if found is not None:
            return found
        if self.templates is None:
            self.templates = _templates(scope["app"].router.routes)
        for regex, template in self.templates:
            if regex.match(path):
                if template == path:  # no parameters: the path itself is bounded, remember it
                    self.static_routes[path] = template
                return template
        return UNMATCHED

    async def flush(self, redis: Redis, key: str) -> None:
        """Send the pending increments in one pipelined round trip (kept for the next try when
        Redis does not answer)."""
        if not self.pending:
            return
        taken, self.pending = self.pending, {}
        try:
            pipe = redis.pipeline(transaction=False)
            for f, n in taken.items():
                pipe.hincrby(key, f, n)
            await pipe.execute()
        except BaseException:  # cancelled too: put them back for the next flush
            for f, n in taken.items():
                self.pending[f] = self.pending.get(f, 0) + n
            raise

    async def _flush_loop(self, app: Any) -> None:
        """Flush every FLUSH_SECONDS while there is something to send, then end (the next request
        starts it again): an idle process runs no timer and holds no connection. The loop has its
        own one-connection client, closed when it ends, so it never depends on (or outlives) the
        app's clients: an app whose lifespan is not seen here (tests) leaves nothing open."""
        settings = app.state.settings
        key = GlobalKeys(settings.taskq_prefix).http_metrics
        redis = connect(settings, max_connections=1)
        failures = 0
        try:
            while self.pending and failures < MAX_FAILED_FLUSHES:
                if not self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):  # woken early at shutdown
                        await asyncio.wait_for(self.stopping.wait(), FLUSH_SECONDS)
                try:
                    await self.flush(redis, key)
                    failures = 0
                except (RedisError, OSError) as exc:
                    failures += 1
                    log.warning("could not send the request metrics (%s); retrying", type(exc).__name__)
                    if self.stopping.is_set():
                        break
            if failures:
                self.pending.clear()  # given up on: see MAX_FAILED_FLUSHES
        finally:
            self.flusher = None
            await redis.aclose()

    async def aclose(self) -> None:
        """Send the last counts and end the flush loop (what the lifespan's shutdown does; for an app
        driven without it, e.g. the test client's, so no loop outlives its app)."""
        self.stopping.set()
        if self.flusher is not None:
            await self.flusher

    def _on_shutdown(self, scope: Scope, receive: Receive) -> Receive:
        """The app's receive for the lifespan: before the app hears "shutdown" (and closes its Redis
        clients), the last counts are sent."""

        async def receive_then_flush() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.aclose()  # it flushes once more, at once, and ends
            return message

        return receive_then_flush
