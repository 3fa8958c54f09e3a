"""The chaos latency proxy (e2e.chaos.linkproxy) on its own, with real sockets on 127.0.0.1 and the
suite's real Redis behind it: a delay shows in a round trip, 0 heals it, order holds across a delay
change, and a closed upstream closes the client's connection.

If the proxy did not delay, scenario L would inject nothing; if it reordered or kept a dead link
open, L would report the proxy's bugs as the queue's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from e2e.chaos.linkproxy import LinkProxy, control
from taskq.localserver import LocalRedis, free_port

DELAY_MS = 400  # each way: a PING's round trip through the proxy takes at least twice this


@pytest.fixture
async def link(redis_server: LocalRedis) -> AsyncIterator[tuple[LinkProxy, int, int]]:
    proxy = LinkProxy(("127.0.0.1", redis_server.port))
    port, control_port = await proxy.start(("127.0.0.1", 0), ("127.0.0.1", 0))
    yield proxy, port, control_port
    await proxy.close()


async def set_delay(control_port: int, ms: int) -> str:
    # The runner's own client, blocking: in a thread, since the proxy answers from this event loop.
    return await asyncio.to_thread(control, ("127.0.0.1", control_port), f"delay {ms}")


async def round_trip(client: Redis) -> float:
    started = time.monotonic()
    assert await client.ping()
    return time.monotonic() - started


async def test_a_delay_shows_in_the_round_trip_and_zero_heals_it(link: tuple[LinkProxy, int, int]) -> None:
    _, port, control_port = link
    client = Redis(host="127.0.0.1", port=port, socket_timeout=30)
    try:
        assert await round_trip(client) < 2 * DELAY_MS / 1000  # the connection exists, undelayed

        assert await set_delay(control_port, DELAY_MS) == f"ok {DELAY_MS}"
        assert await asyncio.to_thread(control, ("127.0.0.1", control_port), "delay") == str(DELAY_MS)
        assert await round_trip(client) >= 2 * DELAY_MS / 1000

        await set_delay(control_port, 0)
        assert await round_trip(client) < 2 * DELAY_MS / 1000
    finally:
        await client.aclose()


async def test_order_holds_when_the_delay_drops_mid_stream(link: tuple[LinkProxy, int, int]) -> None:
    _, port, control_port = link
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await set_delay(control_port, DELAY_MS)
        writer.write(b"ECHO first\r\n")
        await writer.drain()
        # Read after the change: due at once, yet it must not overtake the chunk still delayed.
        await set_delay(control_port, 0)
        writer.write(b"ECHO second\r\n")
        await writer.drain()
        replies = await asyncio.wait_for(reader.readexactly(len(b"$5\r\nfirst\r\n$6\r\nsecond\r\n")), 10)
        assert replies == b"$5\r\nfirst\r\n$6\r\nsecond\r\n"
    finally:
        writer.close()


async def test_a_closed_upstream_closes_the_client_side(link: tuple[LinkProxy, int, int]) -> None:
    _, port, control_port = link
    await set_delay(control_port, 100)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"QUIT\r\n")  # Redis answers +OK, then closes its end
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b"+OK\r\n"  # read() returns at EOF only
    finally:
        writer.close()


async def test_an_unreachable_upstream_closes_the_client_at_once() -> None:
    proxy = LinkProxy(("127.0.0.1", free_port()))  # nothing listens there
    port, _ = await proxy.start(("127.0.0.1", 0), ("127.0.0.1", 0))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    finally:
        await proxy.close()


async def test_a_malformed_control_line_is_refused(link: tuple[LinkProxy, int, int]) -> None:
    proxy, _, control_port = link
    with pytest.raises(ValueError, match="expected"):
        await asyncio.to_thread(control, ("127.0.0.1", control_port), "latency 5")
    with pytest.raises(ValueError, match="negative"):
        await set_delay(control_port, -1)
    assert proxy.delay == 0
