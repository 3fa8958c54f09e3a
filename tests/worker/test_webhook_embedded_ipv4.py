"""call_webhook's SSRF guard and IPv6 addresses that carry an IPv4 one (NAT64, IPv4-translated,
IPv4-compatible, 6to4, Teredo): a private IPv4 must not get through wrapped in IPv6.

Names resolve through the handler's own seam (``resolve_host``), replaced here by a table; no test
here may open a connection at all (a socket guard fails the test on any connect), so a broken guard
cannot reach a real metadata address from this machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskq import Taskq
from taskq.builtin_tasks import CallWebhookArgs
from worker.context import JobContext
from worker.handlers import webhook
from worker.handlers.webhook import IPAddress, WebhookRefused, call_webhook, is_public, resolve_target
from worker.settings import Allowlist
from worker.testing import worker_settings

#: (address, the IPv4 it stands for, or why it is refused)
WRAPPED_PRIVATE = [
    pytest.param("64:ff9b::a9fe:a9fe", id="nat64-well-known-169.254.169.254"),
    pytest.param("64:ff9b::a00:1", id="nat64-well-known-10.0.0.1"),
    pytest.param("64:ff9b::7f00:1", id="nat64-well-known-127.0.0.1"),
    pytest.param("64:ff9b::6440:1", id="nat64-well-known-100.64.0.1-cgnat"),
    pytest.param("64:ff9b:1::a9fe:a9fe", id="nat64-local-use-prefix"),
    pytest.param("64:ff9b:1:a9fe:a9:fe00::", id="nat64-local-use-other-layout"),
    pytest.param("::ffff:0:a9fe:a9fe", id="ipv4-translated-169.254.169.254"),
    pytest.param("::ffff:a9fe:a9fe", id="ipv4-mapped-169.254.169.254"),
    pytest.param("::a9fe:a9fe", id="ipv4-compatible-169.254.169.254"),
    pytest.param("::808:808", id="ipv4-compatible-even-public"),
    pytest.param("2002:a9fe:a9fe::1", id="6to4-169.254.169.254"),
    pytest.param("2002:c0a8:101::1", id="6to4-192.168.1.1"),
    pytest.param("2001:0:4136:e378:8000:63bf:3fff:fdd2", id="teredo"),
    pytest.param("2001:0:a9fe:a9fe::1", id="teredo-server-169.254.169.254"),
]

#: Wrappers of a public IPv4, which a DNS64 resolver hands out for IPv4-only hosts: still allowed.
WRAPPED_PUBLIC = ["64:ff9b::808:808", "::ffff:0:808:808", "::ffff:808:808", "2002:808:808::1"]


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail the test on any connection attempt, and on any use of the system resolver."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise ConnectionRefusedError(f"socket guard: connection to {address} refused by the test")

    def no_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(("getaddrinfo", host))
        raise socket.gaierror(socket.EAI_NONAME, "no real DNS in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    yield attempts
    assert not attempts, f"the webhook tried to reach {attempts}"


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The handler's resolver, answering from this table (name -> addresses)."""
    table: dict[str, list[str]] = {}

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in table[host]]

    monkeypatch.setattr(webhook, "resolve_host", resolve)
    return table


async def call(url: str, taskq: Taskq, tmp_path: Path) -> Any:
    settings = worker_settings("redis://127.0.0.1:1/0", "t", tmp_path)
    ctx = JobContext(
        job_id="j1", queue="default", task="call_webhook", attempt=1, token=1,
        settings=settings, taskq=taskq, loop=asyncio.get_running_loop(),
    )  # fmt: skip
    args = CallWebhookArgs.model_validate({"url": url, "timeout_seconds": 5})
    try:
        return await call_webhook(args, ctx)
    finally:
        client = ctx.resources.get("http")
        if isinstance(client, httpx.AsyncClient):
            await client.aclose()


async def test_nat64_metadata_address_is_refused(
    dns: dict[str, list[str]], no_connections: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    """The classic: a name whose AAAA record is the NAT64 form of the cloud metadata service."""
    dns["hooks.example.com"] = ["64:ff9b::a9fe:a9fe"]
    with pytest.raises(WebhookRefused, match="non-public"):
        await call("http://hooks.example.com/latest/meta-data/", taskq, tmp_path)


@pytest.mark.parametrize("address", WRAPPED_PRIVATE)
async def test_a_name_resolving_to_a_wrapped_private_ipv4_is_refused(
    address: str, dns: dict[str, list[str]], no_connections: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    dns["hooks.example.com"] = [address]
    with pytest.raises(WebhookRefused, match="non-public"):
        await call("https://hooks.example.com/hook", taskq, tmp_path)


@pytest.mark.parametrize("address", WRAPPED_PRIVATE)
async def test_a_literal_wrapped_private_ipv4_is_refused(
    address: str, no_connections: list[Any], taskq: Taskq, tmp_path: Path
) -> None:
    with pytest.raises(WebhookRefused, match="non-public"):
        await call(f"http://[{address}]:8080/hook", taskq, tmp_path)


async def test_one_wrapped_private_answer_among_public_ones_is_refused(
    dns: dict[str, list[str]], no_connections: list[Any]
) -> None:
    dns["hooks.example.com"] = ["93.184.216.34", "64:ff9b::a9fe:a9fe"]
    with pytest.raises(WebhookRefused):
        await resolve_target(httpx.URL("https://hooks.example.com/"), Allowlist.parse(""))


@pytest.mark.parametrize("address", WRAPPED_PUBLIC)
async def test_a_wrapped_public_ipv4_is_allowed_and_pinned(
    address: str, dns: dict[str, list[str]], no_connections: list[Any]
) -> None:
    """Checked without connecting: the target is pinned to the address that was judged."""
    dns["hooks.example.com"] = [address]
    target = await resolve_target(httpx.URL("https://hooks.example.com/h"), Allowlist.parse(""))
    assert ipaddress.ip_address(target.url.host) == ipaddress.ip_address(address)
    assert target.host == "hooks.example.com"


def test_only_global_unicast_ipv6_is_public() -> None:
    public = ["2606:2800:220:1:248:1893:25c8:1946", "2a00:1450:4001:80b::200e", *WRAPPED_PUBLIC]
    private = ["fec0::1", "100::1", "2001:db8::1", "ff02::1", "::", "::1", "fe80::1", "fd00::1", "200::1"]
    assert all(is_public(ipaddress.ip_address(a)) for a in public)
    assert not any(is_public(ipaddress.ip_address(a)) for a in private)
