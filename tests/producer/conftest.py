"""Producer fixtures: the real app (lifespan included) on the session's real Redis, a unique key prefix
per test, and an httpx client over the ASGI transport. ``make_client`` builds variants (auth, limits).
The session's ``taskq`` fixture (same prefix) plays the worker's side through core's client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from producer.testing import make_settings, serve
from taskq.localserver import LocalRedis

ClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_client(redis_server: LocalRedis, prefix: str) -> ClientFactory:
    def factory(**overrides: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        url = overrides.pop("redis_url", redis_server.url)
        client_kw = overrides.pop("client_kw", {})
        return serve(make_settings(url, overrides.pop("prefix", prefix), **overrides), **client_kw)

    return factory


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c
