"""The dashboard's shells and assets are public and carry a strict CSP; nothing else opens under its
prefix without the token, and no request path reaches a file outside the asset allow-list."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from producer.dashboard.routes import STATIC

if TYPE_CHECKING:  # a fixture's type; conftest.py is not importable at run time
    from tests.producer.conftest import ClientFactory

TOKEN = "dashboard-test-token-0123"
JOB = "01a233c4-70fb-7e77-b3c2-40a66d03aa0e"


@pytest.mark.parametrize(
    "path", ["/dashboard", "/dashboard/dead-letter", "/dashboard/enqueue", f"/dashboard/jobs/{JOB}"]
)
async def test_shells_open_without_the_token_under_a_csp(make_client: ClientFactory, path: str) -> None:
    async with make_client(api_token=TOKEN) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert '<script type="module" src="/dashboard/static/main.js"></script>' in response.text
    assert "<script>" not in response.text


async def test_every_asset_is_served_with_its_type(make_client: ClientFactory) -> None:
    assert {"main.js", "live.js", "api.js", "dom.js", "dashboard.css"} <= STATIC.keys()
    async with make_client(api_token=TOKEN) as client:
        for name in STATIC:
            response = await client.get(f"/dashboard/static/{name}")
            assert response.status_code == 200, name
            kind = "text/css" if name.endswith(".css") else "text/javascript"
            assert response.headers["content-type"].startswith(kind)
            assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/routes.py",
        "/dashboard/static/..%2Froutes.py",
        "/dashboard/static/../templates/shell.html",
        "/dashboard/static/%2e%2e%2f__init__.py",
        "/dashboard/jobs/not-a-job-id",
        "/dashboard/../queues",
        "/dashboardx",
    ],
)
async def test_nothing_else_is_reachable(make_client: ClientFactory, path: str) -> None:
    async with make_client(api_token=TOKEN) as client:
        response = await client.get(path)
    assert response.status_code in (401, 404, 422), (path, response.status_code)
    assert "import" not in response.text
    assert "<html" not in response.text


async def test_data_needs_the_token(make_client: ClientFactory) -> None:
    async with make_client(api_token=TOKEN) as client:
        for path in ("/queues", "/workers", "/tasks", f"/jobs/{JOB}", "/dead-letter"):
            response = await client.get(path)
            assert response.status_code == 401, path
        authed = await client.get("/queues", headers={"Authorization": f"Bearer {TOKEN}"})
    assert authed.status_code == 200
    assert isinstance(authed.json(), list)
