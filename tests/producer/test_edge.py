"""The HTTP edge: unknown routes and methods, the body limit (also while streaming), auth, the rate
limit, request ids and logs, and the OpenAPI document."""

from __future__ import annotations

import io
import json
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from producer import create_app
from producer.logs import AccessLog
from producer.testing import EMAIL, assert_problem, make_settings, serve
from taskq import Taskq
from taskq.localserver import LocalRedis

TOKEN = "s3cret-token-for-tests-only"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nope"), 404)
    assert_problem(await client.get("/"), 404)


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.put("/send-email", json=EMAIL)
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]


async def test_declared_oversized_body_is_413_without_reading_it(make_client: Any, taskq: Taskq) -> None:
    async with make_client(max_body_bytes=4096) as client:
        body = {**EMAIL, "body": "x" * 5000}
        problem = assert_problem(await client.post("/send-email", json=body), 413)
        assert "4096" in problem["detail"]
        assert (await client.post("/send-email", json={**EMAIL, "body": "x" * 3000})).status_code == 202
    assert (await taskq.stats("default")).counters["enqueued"] == 1


async def test_chunked_body_without_length_is_cut_off_at_the_limit(
    redis_server: LocalRedis, prefix: str
) -> None:
    """Driven through ASGI directly: a body streamed in chunks, no Content-Length. The app must
    answer 413 after reading just past the limit, not after consuming the whole stream."""
    app = create_app(make_settings(redis_server.url, prefix, max_body_bytes=8192))
    chunk = b'{"task": "debug.noop", "args": {"tag": "' + b"x" * 4000
    chunks_sent = 0
    total_chunks = 1000  # ~4 MB if it were all read

    async def receive() -> MutableMapping[str, Any]:
        nonlocal chunks_sent
        chunks_sent += 1
        return {"type": "http.request", "body": chunk, "more_body": chunks_sent < total_chunks}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/jobs", "raw_path": b"/jobs", "query_string": b"", "root_path": "",
        "headers": [
            (b"host", b"test"), (b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")
        ],
        "client": ("127.0.0.1", 1234), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert chunks_sent <= 4  # stopped just past 8 KiB
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(body)["status"] == 413


async def test_auth_required_everywhere_but_probes(make_client: Any, taskq: Taskq) -> None:
    async with make_client(api_token=TOKEN) as client:
        for method, path in [("POST", "/send-email"), ("POST", "/jobs"), ("GET", "/queues"),
                             ("GET", "/tasks"), ("GET", "/workers"), ("GET", "/dead-letter"),
                             ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/nope")]:  # fmt: skip
            response = await client.request(method, path, json=EMAIL if method == "POST" else None)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"] == 'Bearer realm="taskq"'
        wrong = await client.post("/send-email", json=EMAIL, headers={"Authorization": "Bearer nope"})
        assert_problem(wrong, 401)
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert_problem(await client.post("/send-email", json=EMAIL, headers={"Authorization": TOKEN}), 401)
        ok = await client.post("/send-email", json=EMAIL, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 202
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200
        with_token = {"Authorization": f"Bearer {TOKEN}"}
        assert (await client.get("/openapi.json", headers=with_token)).status_code == 200
        assert (await client.get("/docs", headers=with_token)).status_code == 200
    assert (await taskq.stats("default")).counters["enqueued"] == 1


def test_production_refuses_a_placeholder_token(redis_server: LocalRedis, prefix: str) -> None:
    for token in ("change-me", "short"):
        with pytest.raises(ValueError, match="API_TOKEN"):
            make_settings(redis_server.url, prefix, environment="production", api_token=token)
    assert make_settings(redis_server.url, prefix, environment="production", api_token=TOKEN).api_token
    assert make_settings(redis_server.url, prefix, api_token="").api_token is None


async def test_rate_limit_is_429_with_retry_after(make_client: Any) -> None:
    async with make_client(rate_limit_per_minute=60) as client:
        statuses = [(await client.get("/tasks")).status_code for _ in range(10)]
        assert statuses[0] == 200
        assert 429 in statuses
        limited = await client.get("/tasks")
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert (await client.get("/healthz")).status_code == 200  # probes are never limited
    async with make_client(rate_limit_per_minute=60, api_token=TOKEN) as client:
        # Clients are told apart by address: another token from the same one shares its spent budget.
        spent = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(10):
            await client.get("/tasks", headers=spent)
        assert (await client.get("/tasks", headers=spent)).status_code == 429
        assert (await client.get("/tasks", headers={"Authorization": "Bearer other"})).status_code == 429


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": 'x" onload=1 ' + "y" * 300})
    assert hostile.headers["x-request-id"] != "x"
    problem = assert_problem(await client.get("/nope", headers={"X-Request-ID": "req-9"}), 404)
    assert problem["request_id"] == "req-9"


async def test_one_json_log_line_per_request_without_secrets(redis_server: LocalRedis, prefix: str) -> None:
    out = io.BytesIO()
    settings = make_settings(redis_server.url, prefix, api_token=TOKEN)
    async with serve(settings, access_log=AccessLog(stream=out)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "r-1"}
        await client.post("/send-email?secret=q", json=EMAIL, headers=headers)
        await client.get("/nope", headers=headers)
    # Flushed at shutdown at the latest: one JSON object per line, one line per request.
    lines = out.getvalue().decode().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert (first["msg"], first["request_id"], first["method"], first["path"], first["status"]) == (
        "request", "r-1", "POST", "/send-email", 202,
    )  # fmt: skip
    assert second["status"] == 404
    assert first["duration_ms"] >= 0
    assert first["ts"].endswith("Z")
    text = out.getvalue().decode()
    assert TOKEN not in text
    assert "secret" not in text
    assert "ada@example.com" not in text


async def test_openapi_documents_every_error_as_problem_json(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "Problem" in spec["components"]["schemas"]
    paths = spec["paths"]
    for path in ("/send-email", "/jobs", "/jobs/batch", "/jobs/{job_id}", "/queues", "/workers",
                 "/dead-letter", "/dead-letter/{job_id}/retry", "/dead-letter/{job_id}", "/tasks",
                 "/healthz", "/readyz", "/metrics"):  # fmt: skip
        assert path in paths, path
    for path, item in paths.items():
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (path, method, code)
    post_jobs = paths["/jobs"]["post"]["responses"]
    assert {"202", "200", "400", "413", "415", "422", "429", "503"} <= post_jobs.keys()
    assert "Idempotency-Key" in [p["name"] for p in paths["/jobs"]["post"]["parameters"]]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
