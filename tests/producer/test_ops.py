"""Probes, metrics, and the outage behaviour: Redis down is a quick 503, and the service recovers."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx

from producer.testing import EMAIL, assert_problem, make_settings, serve
from taskq import Ack, Taskq
from taskq.localserver import LocalRedis

#: Above the 1.5 s Redis socket timeout: a hang is unbounded, a loaded 2-core box adds a second or two.
HUNG_MARGIN = 2.5


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "warnings": []}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_readyz_refuses_redis_without_persistence(prefix: str) -> None:
    with LocalRedis(appendonly=False).running() as server:
        async with serve(make_settings(server.url, prefix)) as client:
            problem = assert_problem(await client.get("/readyz"), 503)
            assert "persistence is off" in problem["detail"]
        async with serve(make_settings(server.url, prefix, require_persistence=False)) as client:
            ready = (await client.get("/readyz")).json()
            assert ready["status"] == "ready"
            assert "persistence" in ready["warnings"][0]


async def test_readyz_refuses_an_evicting_policy(prefix: str) -> None:
    with LocalRedis(extra=("--maxmemory-policy", "allkeys-lru")).running() as server:
        async with serve(make_settings(server.url, prefix)) as client:
            assert "maxmemory-policy" in assert_problem(await client.get("/readyz"), 503)["detail"]


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not in metrics")


async def test_metrics_are_aggregated_in_redis_across_processes(
    make_client: Any, taskq: Taskq, queue_name: str
) -> None:
    # Two app instances stand for two producer processes: each counts the other's jobs.
    async with make_client() as one, make_client() as two:
        await one.post("/jobs", json={"task": "debug.noop", "queue": queue_name})
        await two.post("/jobs", json={"task": "debug.noop", "queue": queue_name})
        await two.post("/jobs", json={"task": "debug.noop", "queue": queue_name})
        claimed = (await taskq.claim(queue_name, "w")).jobs[0]
        await taskq.complete(queue_name, [Ack(claimed.id, claimed.token)], worker_id="w")
        for client in (one, two):
            response = await client.get("/metrics")
            assert response.headers["content-type"].startswith("text/plain")
            text = response.text
            assert _sample(text, "taskq_redis_up") == 1
            assert _sample(text, "taskq_jobs_enqueued_total", queue=queue_name) == 3
            assert _sample(text, "taskq_jobs_succeeded_total", queue=queue_name) == 1
            assert _sample(text, "taskq_jobs_dead_lettered_total", queue=queue_name) == 0
            assert _sample(text, "taskq_queue_jobs", queue=queue_name, state="pending") == 2
            assert _sample(text, "taskq_queue_jobs", queue=queue_name, state="running") == 0


async def test_redis_down_is_a_quick_503_and_the_service_recovers(prefix: str) -> None:
    server = LocalRedis()
    server.start()
    try:
        async with serve(make_settings(server.url, prefix)) as client:
            assert (await client.post("/send-email", json=EMAIL)).status_code == 202
            server.stop(kill=True)
            for method, path, body in [
                ("POST", "/send-email", EMAIL),
                ("POST", "/jobs", {"task": "debug.noop"}),
                ("GET", "/queues", None),
                ("GET", "/readyz", None),
            ]:
                started = time.monotonic()
                response = await client.request(method, path, json=body)
                assert time.monotonic() - started < 2.0
                assert_problem(response, 503)
                assert response.headers["retry-after"]
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert _sample(metrics.text, "taskq_redis_up") == 0
            assert (await client.get("/healthz")).status_code == 200
            server.start()
            # Pooled connections to the old server are dead: none of them may surface as a 503.
            burst = await asyncio.gather(
                *(client.post("/send-email", json=EMAIL) for _ in range(20)),
                *(
                    client.post("/jobs", json={"task": "debug.noop"}, headers={"Idempotency-Key": f"k{i}"})
                    for i in range(20)
                ),
                *(client.get("/queues") for _ in range(10)),
            )
            assert [r.status_code for r in burst] == [202] * 40 + [200] * 10
            assert (await client.get("/readyz")).status_code == 200
    finally:
        server.close()


async def test_a_hung_redis_is_a_503_within_the_socket_timeout(prefix: str) -> None:
    """A frozen server (SIGSTOP: connections open, nothing answers) must not hang requests."""
    with LocalRedis().running() as server:
        async with serve(make_settings(server.url, prefix)) as client:
            assert (await client.post("/jobs", json={"task": "debug.noop"})).status_code == 202
            assert server.process is not None
            server.process.send_signal(signal.SIGSTOP)
            try:
                for path, body in [("/jobs", {"task": "debug.noop"}), ("/send-email", EMAIL)]:
                    started = time.monotonic()
                    response = await client.post(path, json=body)
                    # Not hanging is the point: the 1.5 s socket timeout plus a loaded box's margin.
                    assert time.monotonic() - started < 1.5 + HUNG_MARGIN
                    assert_problem(response, 503)
                started = time.monotonic()
                assert_problem(await client.get("/readyz"), 503)
                assert time.monotonic() - started < 1.5 + HUNG_MARGIN
            finally:
                server.process.send_signal(signal.SIGCONT)
            assert (await client.post("/jobs", json={"task": "debug.noop"})).status_code == 202
