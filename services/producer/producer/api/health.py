"""Probes and metrics: /healthz (the process), /readyz (Redis usable and safe), /metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from producer.deps import RegistryDep, SettingsDep, StrictJSONRoute, TaskqDep
from producer.metrics import render, snapshot
from producer.openapi import problems
from producer.problems import RETRY_AFTER_UNAVAILABLE, problem_response
from producer.schemas import Health
from taskq import RedisUnavailable, TaskqError, check_redis

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)

#: Readiness answers within this bound even when Redis hangs (the client timeouts are shorter).
READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers (no Redis call)")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: Redis reachable, scripts loaded, no eviction, persistence on",
    responses=problems(503),
)
async def readyz(request: Request, taskq: TaskqDep, settings: SettingsDep) -> Response | Health:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            health = await check_redis(
                taskq.redis, taskq.scripts, require_persistence=settings.require_persistence
            )
    except (TimeoutError, RedisUnavailable, TaskqError) as exc:
        detail = "Redis did not answer in time" if isinstance(exc, TimeoutError) else str(exc)
        return _not_ready(request, detail)
    if not health.ok:
        return _not_ready(request, "; ".join(health.problems), problems_=health.problems)
    return Health(status="ready", warnings=health.warnings)


def _not_ready(request: Request, detail: str, problems_: list[str] | None = None) -> Response:
    return problem_response(
        request,
        503,
        f"not ready: {detail}",
        slug="not-ready",
        headers={"Retry-After": RETRY_AFTER_UNAVAILABLE},
        extra={"problems": problems_ or [detail]},
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics, aggregated in Redis across every process",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "Metrics"}
    },
)
async def metrics(taskq: TaskqDep, registry: RegistryDep) -> Response:
    return Response(render(await snapshot(taskq, registry.names())), media_type=CONTENT_TYPE_LATEST)
