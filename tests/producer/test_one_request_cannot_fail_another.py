"""Concurrent requests share Redis round trips (the coalescer), never each other's refusals: a request
whose payload passes the size limit only once re-encoded (``1e15`` is stored as
``1000000000000000.0``) gets its own 413, and the valid requests sent beside it are all accepted."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from producer.testing import EMAIL, assert_problem
from taskq import Taskq

MAX_PAYLOAD = 1024


def _growing_body() -> bytes:
    """Under half the payload limit as sent (so the fast path takes it), past the limit as stored."""
    numbers = b",".join([b"1e15"] * 80)
    body = b'{"task":"call_webhook","queue":"default","args":{"url":"https://example.com/h","payload":{"n":['
    body += numbers + b"]}}}"
    assert len(body) < MAX_PAYLOAD // 2
    return body


async def test_a_payload_that_grows_when_encoded_fails_alone(make_client: Any, taskq: Taskq) -> None:
    async with make_client(max_payload_bytes=MAX_PAYLOAD) as client:

        async def one(i: int) -> tuple[bool, httpx.Response]:
            if i % 10 == 0:
                headers = {"content-type": "application/json"}
                return True, await client.post("/jobs", content=_growing_body(), headers=headers)
            return False, await client.post("/send-email", json={**EMAIL, "subject": f"s{i}"})

        results = await asyncio.gather(*(one(i) for i in range(200)))
    for bad, response in results:
        if bad:
            assert_problem(response, 413)
        else:
            assert response.status_code == 202, response.text
    assert (await taskq.stats("default")).pending == 180
