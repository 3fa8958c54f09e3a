"""Server-Sent Events through the real producer (``python -m producer`` under uvicorn, API_TOKEN set)
and a real worker (``python -m worker``), read with httpx streaming: what a subscriber sees, what a
client that reconnects with Last-Event-ID gets, and the errors before a stream starts.

The stack keeps 100 events per queue (EVENTS_MAX_LEN=100), so a test can push ids out of the window."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from producer.testing import assert_problem
from taskq.job_events import parse_entry_id, read_after
from taskq.keys import QueueKeys
from taskq.localserver import LocalRedis, free_port
from taskq.redis_client import connect_url
from worker.testing import START_SECONDS, settings_env, worker_settings

TOKEN = "sse-test-token-0123456789"
MAX_LEN = 100
#: Streams the producer serves at once (SSE_MAX_STREAMS): small, so a test can reach it.
MAX_STREAMS = 3
#: Every read of a stream is bounded: a test never hangs on a stream that says nothing.
READ_TIMEOUT = 30.0


@dataclass
class Stack:
    base: str
    redis_url: str
    prefix: str

    def client(self, token: str | None = TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=READ_TIMEOUT)


def _wait_until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def stack(redis_server: LocalRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("sse")
    prefix = f"s{uuid.uuid4().hex[:12]}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQ_", "REDIS_", "API_"))}
    env.update({
        "API_HOST": "127.0.0.1", "API_PORT": str(port), "API_TOKEN": TOKEN, "REDIS_URL": redis_server.url,
        "TASKQ_PREFIX": prefix, "ENVIRONMENT": "test", "DEBUG_TASKS": "true", "QUEUES": "*",
        "LEASE_SECONDS": "2", "HEARTBEAT_SECONDS": "0.5", "TASKQ_ENV_FILE": "",
        "EVENTS_MAX_LEN": str(MAX_LEN), "SSE_MAX_STREAMS": str(MAX_STREAMS),
        "REPORTS_DIR": str(tmp / "reports"),
    })  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    with (tmp / "producer.log").open("wb") as log:
        procs.append(subprocess.Popen([sys.executable, "-m", "producer"], env=env, stdout=log, stderr=log))
    settings = worker_settings(redis_server.url, prefix, tmp, events_max_len=MAX_LEN)
    with (tmp / "worker.log").open("wb") as log:
        worker = [sys.executable, "-m", "worker"]
        procs.append(subprocess.Popen(worker, env=settings_env(settings), stdout=log, stderr=log))
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:

        def up() -> bool:
            logs = ("producer.log", "worker.log")
            assert all(p.poll() is None for p in procs), "\n".join((tmp / n).read_text() for n in logs)
            try:
                # The worker registered too: otherwise its start eats into the first test's reads.
                workers = httpx.get(f"{base}/workers", headers=auth, timeout=2)
                return workers.status_code == 200 and bool(workers.json())
            except httpx.TransportError:
                return False

        _wait_until(up, "the producer to answer and the worker to register", START_SECONDS)
        yield Stack(base, redis_server.url, prefix)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def frames(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """The SSE frames of a response as dicts of their fields (comments skipped)."""
    frame: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            frame[name] = value.removeprefix(" ")


def events_of(collected: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [json.loads(f["data"]) | {"sse_id": f["id"]} for f in collected if "data" in f and "id" in f]


async def read_all(client: httpx.AsyncClient, path: str, **headers: str) -> list[dict[str, str]]:
    """Every frame of a stream that ends by itself (a job's, once the job is over)."""
    async with asyncio.timeout(READ_TIMEOUT), client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        return [f async for f in frames(response)]


async def enqueue(client: httpx.AsyncClient, task: str, args: dict[str, Any], **extra: Any) -> str:
    response = await client.post("/jobs", json={"task": task, "args": args, **extra})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def test_a_subscriber_sees_queued_running_succeeded_in_order_without_polling(stack: Stack) -> None:
    params = {"queue": "default"}
    async with stack.client() as client, client.stream("GET", "/events", params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        job = await enqueue(client, "debug.sleep", {"seconds": 0.1})  # after the stream opened: it is live
        statuses: list[str] = []
        async with asyncio.timeout(READ_TIMEOUT):
            async for frame in frames(response):
                if "data" not in frame:
                    continue
                doc = json.loads(frame["data"])
                assert frame["id"].startswith("default=")  # a cursor over the queues followed
                if doc["job_id"] == job:
                    statuses.append(doc["status"])
                    if doc["status"] == "succeeded":
                        break
    assert statuses == ["queued", "running", "succeeded"]


async def test_a_job_stream_replays_then_ends_when_the_job_ends(stack: Stack) -> None:
    async with stack.client() as client:
        # Steps far apart: progress writes are coalesced, and on a loaded box a write slower than a
        # step or two would merge two reports into one event.
        job = await enqueue(client, "debug.steps", {"steps": 3, "step_seconds": 0.5})
        got = events_of(await read_all(client, f"/jobs/{job}/events"))
    assert [e["type"] for e in got] == ["queued", "running", "progress", "progress", "progress", "succeeded"]
    assert [e["percent"] for e in got if e["type"] == "progress"] == pytest.approx([100 / 3, 200 / 3, 100])
    assert {e["job_id"] for e in got} == {job}
    assert [e["sse_id"] for e in got] == [e["id"] for e in got]  # one job: the stream entry id


async def test_a_client_that_reconnects_with_last_event_id_gets_exactly_what_it_missed(stack: Stack) -> None:
    async with stack.client() as client:
        job = await enqueue(client, "debug.steps", {"steps": 6, "step_seconds": 0.3})
        before: list[dict[str, str]] = []
        async with asyncio.timeout(READ_TIMEOUT), client.stream("GET", f"/jobs/{job}/events") as response:
            async for frame in frames(response):
                before.append(frame)
                if "data" in frame and json.loads(frame["data"])["type"] == "progress":
                    break  # the client goes away mid-job
        last = before[-1]["id"]
        # While it is away the job goes on, and ends.
        done = await client.get(f"/jobs/{job}", params={"wait": 20})
        assert done.json()["status"] == "succeeded"
        after = events_of(await read_all(client, f"/jobs/{job}/events", **{"Last-Event-ID": last}))
        everything = events_of(await read_all(client, f"/jobs/{job}/events"))
    seen = events_of(before)
    assert after, "nothing after the reconnect"
    assert seen + after == everything  # no gap, no duplicate, same order
    assert parse_entry_id(after[0]["id"]) > parse_entry_id(last)


async def test_a_malformed_last_event_id_is_a_422_before_any_stream(stack: Stack) -> None:
    async with stack.client() as client:
        job = await enqueue(client, "debug.noop", {})
        for bad in ("abc", "12-x", "-1-0", "1-2-3"):
            assert_problem(await client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": bad}), 422)
        for bad in ("default", "default=abc", "bad name=1-0", "default=1-0,"):
            assert_problem(await client.get("/events", headers={"Last-Event-ID": bad}), 422)


async def test_an_id_older_than_the_window_gets_a_reset_then_the_full_resend(stack: Stack) -> None:
    queue = f"idle{uuid.uuid4().hex[:8]}"  # no worker serves it: its jobs stay queued
    redis = connect_url(stack.redis_url)
    qk = QueueKeys(stack.prefix, queue)
    try:
        async with stack.client() as client:
            first = await enqueue(client, "debug.noop", {}, queue=queue)
            (first_event,) = await read_after(redis, qk, "0-0")
            gone = first_event.id
            for _ in range(3):  # 300 more events: the first node of the stream is trimmed
                batch = {"jobs": [{"task": "debug.noop", "args": {}, "queue": queue}] * 100}
                assert (await client.post("/jobs/batch", json=batch)).status_code == 202
            oldest = (await read_after(redis, qk, "0-0", count=1))[0].id
            assert parse_entry_id(oldest) > parse_entry_id(gone)

            # One job: reset, then its events from its creation (here: none left, it only waits).
            async with asyncio.timeout(READ_TIMEOUT):
                path = f"/jobs/{first}/events"
                async with client.stream("GET", path, headers={"Last-Event-ID": gone}) as response:
                    async for frame in frames(response):
                        if "event" in frame:
                            assert frame["event"] == "reset"
                            assert json.loads(frame["data"])["resend"] == "job"
                            break
            # The queue: reset naming it, then the whole window from its first entry.
            async with asyncio.timeout(READ_TIMEOUT):
                headers, params = {"Last-Event-ID": f"{queue}={gone}"}, {"queue": queue}
                async with client.stream("GET", "/events", params=params, headers=headers) as response:
                    got = []
                    async for frame in frames(response):
                        if "event" in frame:
                            got.append(frame)
                        if len(got) == 2:
                            break
            assert got[0]["event"] == "reset"
            assert json.loads(got[0]["data"])["queues"] == [queue]
            assert json.loads(got[1]["data"])["id"] == oldest
            # An id this stream never gave (another Redis, a flushed one) starts over the same way.
            future = f"{int(oldest.split('-')[0]) + 10**9}-0"
            async with asyncio.timeout(READ_TIMEOUT):
                async with client.stream("GET", path, headers={"Last-Event-ID": future}) as response:
                    first_named = [f async for f in _named(response, 1)]
            assert first_named[0]["event"] == "reset"
    finally:
        await redis.aclose()


async def _named(response: httpx.Response, n: int) -> AsyncIterator[dict[str, str]]:
    count = 0
    async for frame in frames(response):
        if "event" in frame:
            yield frame
            count += 1
            if count == n:
                return


async def test_no_token_is_401_and_an_unknown_job_404_before_any_stream(stack: Stack) -> None:
    async with stack.client(token=None) as anonymous, stack.client(token="wrong-token-0123456789") as wrong:
        for client in (anonymous, wrong):
            assert_problem(await client.get("/events"), 401)
            assert_problem(await client.get(f"/jobs/{uuid.uuid4()}/events"), 401)
    async with stack.client() as client:
        assert_problem(await client.get(f"/jobs/{uuid.uuid4()}/events"), 404)
        assert_problem(await client.get("/events", params={"queue": "no such queue"}), 422)


async def test_streams_are_bounded_and_a_client_that_leaves_frees_its_slot(stack: Stack) -> None:
    async with contextlib.AsyncExitStack() as held, stack.client() as client:
        for _ in range(MAX_STREAMS):
            response = await held.enter_async_context(client.stream("GET", "/events"))
            assert response.status_code == 200
        body = assert_problem(await client.get("/events"), 503)
        assert "event streams" in body["detail"]
    # Every one of those clients went away: their slots come back (the server sees the disconnect).
    async with stack.client() as client:
        deadline = time.monotonic() + READ_TIMEOUT
        while True:
            async with client.stream("GET", "/events") as response:
                if response.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the slots of closed streams never came back"
            await asyncio.sleep(0.1)  # polling a condition (the server's count) with a deadline
