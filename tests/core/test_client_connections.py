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


def mark(url: str) -> int:
    """A client id: Redis numbers connections in the order they open, so any opened later is above."""
    counter = redis.Redis.from_url(url)
    try:
        return int(counter.client_id())
    finally:
        counter.close()


def opened_since(url: str, since: int) -> int:
    """Connections still open that opened after ``since``, the one asking left out. Not the server's
    whole count: the session's server is shared, and other tests' connections may close meanwhile."""
    counter = redis.Redis.from_url(url)
    try:
        pipe = counter.pipeline(transaction=False)
        pipe.client_id()
        pipe.client_list()
        own, clients = pipe.execute()
        return sum(1 for c in clients if since < int(c["id"]) != own)
    finally:
        counter.close()


def settles_at_none(url: str, since: int) -> int:
    """The count once it is 0, or the last one seen after 5 s (a close is seen by the server a moment
    after the client's call returns)."""
    deadline = time.monotonic() + 5
    while (now := opened_since(url, since)) != 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    return now


async def test_async_client_closes_its_connections(redis_server: LocalRedis, prefix: str) -> None:
    url = redis_server.url
    since = mark(url)
    async with Client.from_url(url, environment="test", taskq_prefix=prefix, queues="*") as client:
        done = await client.enqueue("send_email", EMAIL)
        await asyncio.gather(*(client.get_job(done.id) for _ in range(3)))  # more than one pooled
        await client.cancel(done.id)
        assert (await client.wait(done.id, timeout=5)).status == JobStatus.CANCELLED
        assert opened_since(url, since) >= 2  # the wire and the pool's
    assert settles_at_none(url, since) == 0

    # close() without the context manager, then use again (reconnects), then close again.
    client = Client.from_url(url, environment="test", taskq_prefix=prefix, queues="*")
    await client.enqueue("send_email", EMAIL)
    await client.close()
    assert settles_at_none(url, since) == 0
    await client.enqueue("send_email", EMAIL)
    await client.close()
    assert settles_at_none(url, since) == 0


def test_sync_client_closes_every_threads_wire(redis_server: LocalRedis, prefix: str) -> None:
    url = redis_server.url
    since = mark(url)
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
        assert opened_since(url, since) > 2
    assert settles_at_none(url, since) == 0
