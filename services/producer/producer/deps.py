"""Dependencies the routers declare with ``Annotated``, and the route class every router uses."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Path, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from producer.events import EventHub
from producer.problems import ProblemError
from producer.schemas import IDEMPOTENCY_KEY_PATTERN, JOB_ID_PATTERN
from producer.settings import ProducerSettings
from taskq import Taskq, TaskRegistry


class StrictJSONRequest(Request):
    """Parses bodies with orjson: strict JSON (NaN, Infinity and 1e400 are refused), and fast.
    orjson's error is a ``json.JSONDecodeError``, which FastAPI turns into a 422 naming the offset."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


# Every dependency is "async def": FastAPI runs a plain "def" one in a thread pool, which costs far
# more than the dependency itself.


async def get_taskq(request: Request) -> Taskq:
    taskq: Taskq = request.app.state.taskq
    return taskq


async def get_registry(request: Request) -> TaskRegistry:
    registry: TaskRegistry = request.app.state.registry
    return registry


async def get_settings(request: Request) -> ProducerSettings:
    settings: ProducerSettings = request.app.state.settings
    return settings


async def get_events(request: Request) -> EventHub:
    hub: EventHub = request.app.state.events
    return hub


_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


async def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes retries safe: a repeat with the same key and body returns the same job "
            "(1-255 characters of letters, digits and _ . : = + / -)",
        ),
    ] = None,
) -> str | None:
    # Checked here rather than by Header(pattern=...): a malformed key is a 400, not a 422.
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise ProblemError(
            400,
            "malformed Idempotency-Key: 1-255 characters of letters, digits and _ . : = + / -",
            slug="bad-idempotency-key",
        )
    return idempotency_key


TaskqDep = Annotated[Taskq, Depends(get_taskq)]
RegistryDep = Annotated[TaskRegistry, Depends(get_registry)]
SettingsDep = Annotated[ProducerSettings, Depends(get_settings)]
EventsDep = Annotated[EventHub, Depends(get_events)]
IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="A job id (a lowercase UUID)")]
