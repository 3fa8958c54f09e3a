"""Closing a client (its context manager, or close()) closes every connection it opened: the pool's,
the lean wires' (one per thread for SyncClient) and a wait's subscription. Counted by CLIENT LIST."""

from __future__ import annotations

import asyncio
import threading
import time

import redis

from taskq import Client, JobStatus, SyncClient
from taskq.localserver import LocalRedis

EMAIL = {"recipient_email": "a@example.com", "subject": "Hi", "body": "Hello"}


def connections(url: str) -> int:
    """Connections the server holds, the one asking included (the count is compared, not absolute)."""
    counter = redis.Redis.from_url(url)
    try:
        return len(counter.client_list())
    finally:
        counter.close()


def settles_at(url: str, expected: int) -> int:
    """The count once it equals ``expected``, or the last one seen after 5 s (a close is seen by the
    server a moment after the client's call returns)."""
    deadline = time.monotonic() + 5
    while (now := connections(url)) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return now


async def test_async_client_closes_its_connections(redis_server: LocalRedis, prefix: str) -> None:
    url = redis_server.url
    before = connections(url)
    async with Client.from_url(url, environment="test", taskq_prefix=prefix, queues="*") as client:
        done = await client.enqueue("send_email", EMAIL)
        await asyncio.gather(*(client.get_job(done.id) for _ in range(3)))  # more than one pooled
        await client.cancel(done.id)
        assert (await client.wait(done.id, timeout=5)).status == JobStatus.CANCELLED
        assert connections(url) >= before + 2  # the wire and the pool's
    assert settles_at(url, before) == before

    # close() without the context manager, then use again (reconnects), then close again.
    client = Client.from_url(url, environment="test", taskq_prefix=prefix, queues="*")
    await client.enqueue("send_email", EMAIL)
    await client.close()
    assert settles_at(url, before) == before
    await client.enqueue("send_email", EMAIL)
    await client.close()
    assert settles_at(url, before) == before


def test_sync_client_closes_every_threads_wire(redis_server: LocalRedis, prefix: str) -> None:
    url = redis_server.url
    before = connections(url)
    with SyncClient.from_url(url, environment="test", taskq_prefix=prefix, queues="*") as client:
        barrier = threading.Barrier(4)

        def enqueue() -> None:
            barrier.wait(5)  # four callers at once: each takes its own wire
            for _ in range(20):
                client.enqueue("send_email", EMAIL)

        threads = [threading.Thread(target=enqueue) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert client.wires is not None
        assert len(client.wires._idle) >= 2
        done = client.enqueue("send_email", EMAIL)
        client.cancel(done.id)
        assert client.wait(done.id, timeout=5).status == JobStatus.CANCELLED
        assert connections(url) > before + 2
    assert settles_at(url, before) == before
