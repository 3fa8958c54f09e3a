"""call_webhook: SSRF refusals, and real requests only to this test's own server on 127.0.0.1.

Every test runs under a socket guard: any connect() to an address other than the test server fails
the test, so a broken SSRF guard cannot reach a private, link-local or metadata address from here.
Name resolution is faked too (no real DNS): ``rebind.test`` and ``pinned.test`` resolve to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskq import Taskq
from taskq.builtin_tasks import CallWebhookArgs
from worker.context import JobContext
from worker.handlers.webhook import (
    WebhookRefused,
    WebhookRejected,
    WebhookUnavailable,
    call_webhook,
    is_public,
)
from worker.testing import worker_settings

FAKE_DNS = {"rebind.test": "127.0.0.1", "pinned.test": "127.0.0.1"}


@dataclass
class Seen:
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    seen: Seen

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.requests.append((self.path, dict(self.headers), body))
        if self.path == "/ok":
            self._send(200, b'{"received": true}')
        elif self.path == "/fail":
            self._send(503, b"down")
        elif self.path == "/bad":
            self._send(400, b"bad request")
        elif self.path == "/big":
            self._send(200, b"x" * 3_000_000)
        elif self.path == "/to-metadata":
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[int, Seen]]:
    seen = Seen()
    handler = type("H", (Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], seen
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def guard(server: tuple[int, Seen], monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail the test on any connection attempt but to the test server (and no real DNS at all)."""
    port = server[0]
    blocked: list[Any] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def allowed(address: Any) -> bool:
        return not isinstance(address, tuple) or (address[0], address[1]) == ("127.0.0.1", port)

    def connect(self: socket.socket, address: Any) -> None:
        if not allowed(address):
            blocked.append(address)
            raise ConnectionRefusedError(f"socket guard: connection to {address} refused by the test")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not allowed(address):
            blocked.append(address)
            raise ConnectionRefusedError(f"socket guard: connection to {address} refused by the test")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in FAKE_DNS:
            return real_getaddrinfo(FAKE_DNS[name], port, *args, **kwargs)
        if name in ("localhost", "127.0.0.1"):
            return real_getaddrinfo(name, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "no real DNS in tests")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield blocked
    assert not blocked, f"the webhook tried to connect to {blocked}"


async def call(url: str, taskq: Taskq, tmp_path: Path, allowlist: str = "", **payload: Any) -> Any:
    settings = worker_settings("redis://127.0.0.1:1/0", "t", tmp_path, webhook_allowlist=allowlist)
    ctx = JobContext(
        job_id="j1", queue="default", task="call_webhook", attempt=1, token=1,
        settings=settings, taskq=taskq, loop=asyncio.get_running_loop(),
    )  # fmt: skip
    args = CallWebhookArgs.model_validate({"url": url, "payload": payload, "timeout_seconds": 5})
    try:
        return await call_webhook(args, ctx)
    finally:
        client = ctx.resources.get("http")
        if isinstance(client, httpx.AsyncClient):
            await client.aclose()


PRIVATE = [
    "http://127.0.0.1:{port}/ok",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/ok",
    "http://[::ffff:127.0.0.1]:{port}/ok",
    "http://localhost:{port}/ok",
    "http://rebind.test:{port}/ok",
    "http://0.0.0.0:{port}/ok",
    "http://100.100.100.200/latest",
    "http://192.168.1.1/",
]


@pytest.mark.parametrize("template", PRIVATE)
async def test_non_public_targets_are_refused_before_any_connection(
    template: str, server: tuple[int, Seen], guard: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    port, seen = server
    with pytest.raises(WebhookRefused):
        await call(template.format(port=port), taskq, tmp_path)
    assert not seen.requests


async def test_posts_json_to_the_checked_address_keeping_the_host_name(
    server: tuple[int, Seen], guard: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    port, seen = server
    result = await call(f"http://pinned.test:{port}/ok", taskq, tmp_path, "127.0.0.1/32", order=42)
    assert result["status"] == 200
    assert json.loads(result["body"]) == {"received": True}
    path, headers, body = seen.requests[0]
    assert path == "/ok"
    assert json.loads(body) == {"order": 42}
    assert headers["Host"] == f"pinned.test:{port}"
    assert headers["Content-Type"] == "application/json"


async def test_a_redirect_to_a_metadata_address_is_refused(
    server: tuple[int, Seen], guard: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    port, _ = server
    with pytest.raises(WebhookRefused):
        await call(f"http://127.0.0.1:{port}/to-metadata", taskq, tmp_path, "127.0.0.1/32")


async def test_failure_classes_and_the_response_cap(
    server: tuple[int, Seen], guard: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    port, _ = server
    with pytest.raises(WebhookUnavailable):  # 5xx: retried
        await call(f"http://127.0.0.1:{port}/fail", taskq, tmp_path, "127.0.0.1")
    with pytest.raises(WebhookRejected):  # 4xx: permanent
        await call(f"http://127.0.0.1:{port}/bad", taskq, tmp_path, "127.0.0.1")
    with pytest.raises(WebhookRejected, match="larger than"):
        await call(f"http://127.0.0.1:{port}/big", taskq, tmp_path, "127.0.0.1")


def test_address_classification() -> None:
    import ipaddress

    public = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1"]
    private = [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "169.254.169.254", "100.64.0.1", "::1",
        "fe80::1", "fd00:ec2::254", "::ffff:10.0.0.1", "2002:7f00:1::1", "224.0.0.1", "0.0.0.0",
    ]  # fmt: skip
    assert all(is_public(ipaddress.ip_address(a)) for a in public)
    assert not any(is_public(ipaddress.ip_address(a)) for a in private)
