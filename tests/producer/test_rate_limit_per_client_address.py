"""The rate limit counts per client address, whatever Authorization header is sent: rotating junk
headers (auth off) or spacing variants of the token (auth on) buy no fresh budget, two addresses never
share one, refused tokens (401) are counted too, and X-Forwarded-For is believed only from a proxy
named in TRUSTED_PROXIES. Requests are raw ASGI calls whose ``client`` tuple is the address."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from producer import create_app
from producer.testing import make_settings
from taskq.localserver import LocalRedis

TOKEN = "s3cret-token-of-32-characters-xx"
#: One request a minute: the limiter's burst admits 2 at once, then each waits 60 s. The test never
#: comes near a minute, so the counts below do not depend on timing.
BURST = 2


@contextlib.asynccontextmanager
async def _app(redis_server: LocalRedis, prefix: str, **overrides: Any) -> AsyncIterator[Any]:
    app = create_app(make_settings(redis_server.url, prefix, rate_limit_per_minute=1, **overrides))
    async with app.router.lifespan_context(app):
        yield app


def _from(app: Any, address: str) -> httpx.AsyncClient:
    """A client whose requests reach the app with ``scope["client"] == (address, 40000)``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://t"
    )


async def _statuses(client: httpx.AsyncClient, headers: list[dict[str, str]]) -> list[int]:
    return [(await client.get("/tasks", headers=h)).status_code for h in headers]


async def test_rotating_authorization_headers_share_their_address_budget_when_auth_is_off(
    redis_server: LocalRedis, prefix: str
) -> None:
    async with _app(redis_server, prefix) as app, _from(app, "10.0.0.1") as a, _from(app, "10.0.0.2") as b:
        junk = [{"Authorization": f"Bearer junk-{i}"} for i in range(10)]
        assert await _statuses(a, junk) == [200] * BURST + [429] * (10 - BURST)
        # Another address has its own budget, untouched by the first one's.
        assert await _statuses(b, [{}] * 4) == [200] * BURST + [429] * 2
        limited = await a.get("/tasks")
        assert int(limited.headers["retry-after"]) >= 1


async def test_each_address_has_its_own_budget_with_the_token_and_spacing_variants_buy_none(
    redis_server: LocalRedis, prefix: str
) -> None:
    async with (
        _app(redis_server, prefix, api_token=TOKEN) as app,
        _from(app, "10.0.0.1") as a,
        _from(app, "10.0.0.2") as b,
    ):
        variants = [{"Authorization": f"Bearer{' ' * (1 + i)}{TOKEN}"} for i in range(6)]
        assert await _statuses(a, variants) == [200] * BURST + [429] * (6 - BURST)
        # The same token from another address is another client.
        assert await _statuses(b, [{"Authorization": f"Bearer {TOKEN}"}] * 3) == [200] * BURST + [429]


async def test_refused_tokens_are_counted(redis_server: LocalRedis, prefix: str) -> None:
    async with _app(redis_server, prefix, api_token=TOKEN) as app, _from(app, "10.0.0.3") as c:
        guesses = [{"Authorization": f"Bearer guess-{i}"} for i in range(6)]
        assert await _statuses(c, guesses) == [401] * BURST + [429] * (6 - BURST)


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    redis_server: LocalRedis, prefix: str
) -> None:
    async with (
        _app(redis_server, prefix, trusted_proxies="10.9.0.0/16, 192.0.2.7") as app,
        _from(app, "10.9.1.1") as proxy,
        _from(app, "198.51.100.4") as direct,
    ):
        # Behind the trusted proxy, each forwarded client has its own budget (the proxy's own hop,
        # 192.0.2.7, is trusted too and skipped).
        one = {"X-Forwarded-For": "203.0.113.5"}
        two = {"X-Forwarded-For": "198.51.100.99, 203.0.113.6, 192.0.2.7"}
        assert await _statuses(proxy, [one] * 3) == [200] * BURST + [429]
        assert await _statuses(proxy, [two] * 3) == [200] * BURST + [429]
        # A client that is not a trusted proxy cannot pick its address with the header.
        forged = [{"X-Forwarded-For": f"203.0.113.{i}"} for i in range(10, 16)]
        assert await _statuses(direct, forged) == [200] * BURST + [429] * (6 - BURST)
