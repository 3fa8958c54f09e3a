"""call_webhook follows redirects by hand: at most ``WEBHOOK_MAX_REDIRECTS`` of them, and the SSRF guard
judges every hop, not just the first.

Two HTTP servers on 127.0.0.1 play the hops. Names resolve through the handler's seam
(``resolve_host``), replaced by a table: ``hop1.test`` and ``hop2.test`` are the two servers (both
allow-listed by name, standing in for public hosts), ``intranet.test`` and ``metadata.test`` are private
addresses nothing here listens on. A socket guard fails the test on any connection outside 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskq import DeadReason, JobStatus, Taskq
from taskq.builtin_tasks import CallWebhookArgs
from worker.context import JobContext
from worker.handlers import webhook
from worker.handlers.webhook import IPAddress, WebhookRefused, WebhookRejected, call_webhook
from worker.settings import WorkerSettings
from worker.testing import RunningWorker, wait_status, worker_settings

DNS = {
    "hop1.test": ["127.0.0.1"],
    "hop2.test": ["127.0.0.1"],
    "intranet.test": ["10.0.0.7"],
    "metadata.test": ["169.254.169.254"],
}
ALLOW = "hop1.test,hop2.test"


@dataclass
class Hop:
    """One server: ``routes`` maps a path to a redirect target; any other path answers 200."""

    port: int = 0
    routes: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, Host, path)


class Handler(BaseHTTPRequestHandler):
    hop: Hop

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        self.hop.seen.append((self.command, self.headers["Host"], self.path))
        target = self.hop.routes.get(self.path)
        body = b"" if target else json.dumps({"reached": self.path}).encode()
        self.send_response(307 if target else 200)
        if target:
            self.send_header("Location", target)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hops() -> Iterator[tuple[Hop, Hop]]:
    servers: list[ThreadingHTTPServer] = []
    out: list[Hop] = []
    for _ in range(2):
        hop = Hop()
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Handler,), {"hop": hop}))
        hop.port = httpd.server_address[1]
        # A short poll: shutdown() waits for the serving loop to notice, twice per test.
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        out.append(hop)
    try:
        yield out[0], out[1]
    finally:
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Names resolve from DNS through the handler's seam; a connection outside 127.0.0.1 fails the test."""
    blocked: list[Any] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: Any) -> None:
        if isinstance(address, tuple) and address[0] != "127.0.0.1":
            blocked.append(address)
            raise ConnectionRefusedError(f"socket guard: connection to {address} refused by the test")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in DNS[host]]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(webhook, "resolve_host", resolve)
    yield blocked
    assert not blocked, f"the webhook tried to connect to {blocked}"


def chain(first: Hop, second: Hop, redirects: int) -> str:
    """A chain of ``redirects`` redirects alternating between the two servers; returns its first URL."""
    hosts = [(f"http://hop1.test:{first.port}", first), (f"http://hop2.test:{second.port}", second)]
    for n in range(redirects, 0, -1):
        _, hop = hosts[n % 2]
        next_base, _ = hosts[(n - 1) % 2]
        hop.routes[f"/r{n}"] = f"{next_base}/r{n - 1}"
    return f"{hosts[redirects % 2][0]}/r{redirects}"


async def call(url: str, taskq: Taskq, tmp_path: Path, **overrides: Any) -> Any:
    settings = worker_settings("redis://127.0.0.1:1/0", "t", tmp_path, webhook_allowlist=ALLOW, **overrides)
    ctx = JobContext(
        job_id="j1", queue="default", task="call_webhook", attempt=1, token=1,
        settings=settings, taskq=taskq, loop=asyncio.get_running_loop(),
    )  # fmt: skip
    args = CallWebhookArgs.model_validate({"url": url, "payload": {"n": 1}, "timeout_seconds": 5})
    try:
        return await call_webhook(args, ctx)
    finally:
        client = ctx.resources.get("http")
        if isinstance(client, httpx.AsyncClient):
            await client.aclose()


def requests(*hops: Hop) -> list[str]:
    return sorted(path for hop in hops for _, _, path in hop.seen)


@pytest.mark.parametrize("limit", [0, 1, 3])
async def test_a_chain_as_long_as_the_redirect_limit_is_followed_to_the_end(
    limit: int, hops: tuple[Hop, Hop], guard: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    first, second = hops
    result = await call(chain(first, second, limit), taskq, tmp_path, webhook_max_redirects=limit)
    assert result["status"] == 200
    assert json.loads(result["body"]) == {"reached": "/r0"}
    assert requests(first, second) == sorted(f"/r{n}" for n in range(limit + 1))
    # Each hop was sent to its own server under its own name.
    assert all(host.startswith("hop1.test:") for _, host, _ in first.seen)
    assert all(host.startswith("hop2.test:") for _, host, _ in second.seen)


@pytest.mark.parametrize("limit", [0, 1, 3])
async def test_a_chain_one_longer_than_the_redirect_limit_fails_without_a_further_request(
    limit: int, hops: tuple[Hop, Hop], guard: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    first, second = hops
    url = chain(first, second, limit + 1)
    with pytest.raises(WebhookRejected, match=f"more than {limit} redirects"):
        await call(url, taskq, tmp_path, webhook_max_redirects=limit)
    assert requests(first, second) == sorted(f"/r{n}" for n in range(1, limit + 2))  # /r0 never asked


async def test_a_redirect_to_a_private_name_on_the_second_hop_is_refused(
    hops: tuple[Hop, Hop], guard: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    first, _ = hops
    first.routes["/hook"] = "http://intranet.test/admin"
    with pytest.raises(WebhookRefused, match=r"intranet.test.*10\.0\.0\.7"):
        await call(f"http://hop1.test:{first.port}/hook", taskq, tmp_path)
    assert requests(first) == ["/hook"]


@pytest.mark.parametrize(
    "target",
    [
        "http://metadata.test/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://127.0.0.1:{port}/r0",  # the very server of hop 1, but by address: not allow-listed
    ],
)
async def test_a_redirect_to_a_private_address_on_the_third_hop_is_refused(
    target: str, hops: tuple[Hop, Hop], guard: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    first, second = hops
    first.routes["/hook"] = f"http://hop2.test:{second.port}/next"
    second.routes["/next"] = target.format(port=first.port)
    with pytest.raises(WebhookRefused, match="non-public"):
        await call(f"http://hop1.test:{first.port}/hook", taskq, tmp_path)
    assert requests(first, second) == ["/hook", "/next"]


async def test_a_refused_hop_dead_letters_the_job_after_one_attempt(
    hops: tuple[Hop, Hop],
    guard: list[Any],
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Callable[..., Awaitable[RunningWorker]],
) -> None:
    """Through a real worker and Redis: what the user sees in GET /jobs/{id}."""
    first, second = hops
    first.routes["/hook"] = f"http://hop2.test:{second.port}/next"
    second.routes["/next"] = "http://metadata.test/latest/meta-data/"
    settings = make_settings(webhook_allowlist=ALLOW)
    await start_worker(settings)
    taskq = client_for(settings)
    url = f"http://hop1.test:{first.port}/hook"
    job_id = (await taskq.enqueue("call_webhook", {"url": url}, max_attempts=3)).id
    job = await wait_status(taskq, job_id, {JobStatus.FAILED}, timeout=15)
    assert job.attempts == 1
    assert job.error is not None
    assert job.error.type == "WebhookRefused"
    assert job.error.reason == DeadReason.NON_RETRYABLE.value
    assert "169.254.169.254" in job.error.message
