"""/metrics is exact across processes: a known workload enqueued through ``python -m producer`` with
API_WORKERS=2 (two uvicorn processes behind one port) and run by two ``python -m worker`` processes
gives exact counters, job histograms (wait and run per task) and API latency counts per route, as
parsed by prometheus_client's own parser. The histograms live in Redis, so which process served a
request, claimed a job or answered the scrape does not matter."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from taskq import CoreSettings, SyncTaskq, connect_sync
from taskq.histograms import OTHER_TASK
from taskq.localserver import LocalRedis, free_port
from worker.testing import settings_env, worker_settings

JOBS_PER_TASK = 20
READS = 5
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def series(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples named ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return {lab: v for (n, lab), v in samples.items() if n == name and want <= lab}


def one(samples: Samples, name: str, **labels: str) -> float:
    found = series(samples, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return next(iter(found.values()))


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{log()[-6000:]}"
        time.sleep(0.1)  # polling the state under test (a scrape, a Redis read), with a deadline


def assert_histogram(samples: Samples, name: str, count: int, **labels: str) -> None:
    """Cumulative buckets that never go down, +Inf == _count == ``count``."""
    buckets = series(samples, f"{name}_bucket", **labels)
    assert buckets, (name, labels)
    ordered = sorted(buckets.items(), key=lambda kv: float(dict(kv[0])["le"]))
    values = [v for _, v in ordered]
    assert values == sorted(values), ordered
    assert dict(ordered[-1][0])["le"] == "+Inf"
    assert values[-1] == count
    assert one(samples, f"{name}_count", **labels) == count
    assert one(samples, f"{name}_sum", **labels) >= 0


@pytest.fixture
def stack(redis_server: LocalRedis, prefix: str, tmp_path: Path) -> Iterator[tuple[str, Callable[[], str]]]:
    """A two-process producer and two worker processes on the session's Redis under ``prefix``."""
    port = free_port()
    env = {
        **os.environ,
        "API_HOST": "127.0.0.1", "API_PORT": str(port), "REDIS_URL": redis_server.url, "TASKQ_PREFIX": prefix,
        "ENVIRONMENT": "test", "API_WORKERS": "2", "DEBUG_TASKS": "true", "QUEUES": "*",
    }  # fmt: skip
    logs = [tmp_path / "producer.log", tmp_path / "worker-0.log", tmp_path / "worker-1.log"]
    procs: list[subprocess.Popen[bytes]] = []

    def log() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs if p.exists())

    try:
        with logs[0].open("wb") as out:
            procs.append(
                subprocess.Popen([sys.executable, "-m", "producer"], env=env, stdout=out, stderr=out)
            )
        settings = worker_settings(redis_server.url, prefix, tmp_path)
        for path in logs[1:]:
            (tmp_path / path.stem).mkdir()
            with path.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "worker"], env=settings_env(settings, LOG_LEVEL="INFO"),
                        stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path / path.stem,
                    )
                )  # fmt: skip
        # Ready: each producer process holds its event subscription, both workers said so.
        with redis.Redis.from_url(redis_server.url) as r:
            wait_until(
                lambda: sum(1 for c in r.client_list() if int(c.get("psub", 0)) > 0) >= 2
                and all('"worker started"' in p.read_text(errors="replace") for p in logs[1:]),
                60, "two producer processes and two workers", log,
            )  # fmt: skip
        assert all(p.poll() is None for p in procs), log()
        yield f"http://127.0.0.1:{port}", log
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            assert p.wait(30) == 0, log()


def test_counters_and_histograms_are_exact_across_processes(
    stack: tuple[str, Callable[[], str]], redis_server: LocalRedis, prefix: str
) -> None:
    base_url, log = stack
    tasks = {"debug.noop": {"tag": "x"}, "debug.sleep": {"seconds": 0.02}}
    ids: list[str] = []
    # A fresh connection per request: the kernel spreads them over both producer processes.
    for task, args in tasks.items():
        for _ in range(JOBS_PER_TASK):
            with httpx.Client(base_url=base_url, timeout=10) as client:
                response = client.post("/jobs", json={"task": task, "args": args})
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
    queue = httpx.get(f"{base_url}/jobs/{ids[0]}", timeout=10).json()["queue"]
    for job_id in ids[1:READS]:
        assert httpx.get(f"{base_url}/jobs/{job_id}", timeout=10).status_code == 200
    assert httpx.get(f"{base_url}/jobs/00000000-0000-7000-8000-000000000000", timeout=10).status_code == 404
    # A job of a task no process registered (a library client can enqueue any name): one label.
    core_settings = CoreSettings(redis_url=redis_server.url, taskq_prefix=prefix, queues="*")
    with connect_sync(core_settings) as r:
        SyncTaskq.from_settings(r, core_settings).enqueue("made.up.task", {}, queue=queue, max_attempts=1)

    total = 2 * JOBS_PER_TASK
    with httpx.Client(base_url=base_url, timeout=10) as client:
        samples: Samples = {}

        def settled() -> bool:
            nonlocal samples
            samples = scrape(client)
            posts = series(samples, "taskq_http_request_duration_seconds_count", route="/jobs", method="POST")
            reads = series(samples, "taskq_http_request_duration_seconds_count", route="/jobs/{job_id}")
            done = one(samples, "taskq_jobs_processed_total", queue=queue)
            state[:] = [done, posts, reads]
            return done == total + 1 and sum(posts.values()) == total and sum(reads.values()) == READS + 1

        state: list[object] = []
        what = "the workload to finish and both producer processes to flush"
        wait_until(settled, 40, what, lambda: f"last seen {state}\n{log()}")

    assert one(samples, "taskq_jobs_enqueued_total", queue=queue) == total + 1
    assert one(samples, "taskq_jobs_succeeded_total", queue=queue) == total
    for task in tasks:
        for kind in ("wait", "run"):
            assert_histogram(samples, f"taskq_job_{kind}_seconds", JOBS_PER_TASK, queue=queue, task=task)
    assert_histogram(samples, "taskq_job_wait_seconds", 1, queue=queue, task=OTHER_TASK)
    assert not series(samples, "taskq_job_wait_seconds_count", task="made.up.task")
    # debug.sleep runs 20 ms: its run-time sum says so; a noop's is far less.
    assert one(samples, "taskq_job_run_seconds_sum", queue=queue, task="debug.sleep") >= JOBS_PER_TASK * 0.02
    name = "taskq_http_request_duration_seconds"
    assert_histogram(samples, name, total, method="POST", route="/jobs", status="202")
    assert_histogram(samples, name, READS, method="GET", route="/jobs/{job_id}", status="200")
    assert_histogram(samples, name, 1, method="GET", route="/jobs/{job_id}", status="404")
    assert not [lab for (_, lab) in samples if ("route", f"/jobs/{ids[0]}") in lab], (
        "raw paths are not labels"
    )
