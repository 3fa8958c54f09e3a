"""The real thing: ``python -m producer`` under uvicorn on 127.0.0.1, its healthcheck command, the body
limit on a genuinely chunked upload, and a graceful exit on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from producer.testing import EMAIL
from taskq.localserver import LocalRedis, free_port


@pytest.fixture
def producer_process(
    redis_server: LocalRedis, prefix: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {
        **os.environ,
        "API_HOST": "127.0.0.1", "API_PORT": str(port), "REDIS_URL": redis_server.url, "TASKQ_PREFIX": prefix,
        "MAX_BODY_BYTES": "16384", "ENVIRONMENT": "test",
    }  # fmt: skip
    log = (tmp_path / "producer.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer"], env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "producer.log").read_text()
            assert time.monotonic() < deadline, "producer did not start"
            time.sleep(0.05)  # waiting for a child process to bind its port: nothing to subscribe to
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_check_command_follows_readiness(producer_process: tuple[subprocess.Popen[bytes], str]) -> None:
    _, base = producer_process
    port = base.rsplit(":", 1)[1]
    env = {**os.environ, "API_PORT": port}
    assert subprocess.run([sys.executable, "-m", "producer", "check"], env=env, timeout=30).returncode == 0
    env["API_PORT"] = str(free_port())  # nothing listens there
    assert subprocess.run([sys.executable, "-m", "producer", "check"], env=env, timeout=30).returncode == 1


def test_chunked_upload_over_the_limit_is_413(producer_process: tuple[subprocess.Popen[bytes], str]) -> None:
    _, base = producer_process
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"task": "debug.noop", "args": {"tag": "'
        for _ in range(256):  # 4 MiB if the server read it all
            sent += 1
            yield b"x" * 16384

    with httpx.Client(timeout=10) as client:
        try:
            response = client.post(
                f"{base}/jobs", content=body(), headers={"content-type": "application/json"}
            )
        except httpx.TransportError:
            pytest.fail("the server should answer 413, not drop the connection")
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413


def test_serves_requests_logs_json_and_stops_gracefully(
    producer_process: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    proc, base = producer_process
    response = httpx.post(f"{base}/send-email", json=EMAIL, headers={"X-Request-ID": "proc-1"}, timeout=5)
    assert response.status_code == 202
    assert "server" not in response.headers
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    text = (tmp_path / "producer.log").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    access = [line for line in lines if line.get("request_id") == "proc-1"]
    assert len(access) == 1
    assert access[0]["status"] == 202
    assert access[0]["path"] == "/send-email"
