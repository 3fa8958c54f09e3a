"""The real thing: ``python -m producer`` under uvicorn on 127.0.0.1, its healthcheck command, the body
limit on a genuinely chunked upload, and a graceful exit on SIGTERM."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from producer.testing import EMAIL
from taskq.localserver import LocalRedis, free_port
from worker.testing import START_SECONDS


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
    deadline = time.monotonic() + START_SECONDS
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


def test_chunked_upload_over_the_limit_is_413_before_the_body_ends(
    producer_process: tuple[subprocess.Popen[bytes], str],
) -> None:
    """A raw socket, so the client sees the answer while it is still sending: httpx would push the
    whole body first, and a server that read all 4 MiB before answering would look the same."""
    _, base = producer_process
    port = int(base.rsplit(":", 1)[1])
    chunks, chunk = 256, b"x" * 16384  # 4 MiB if the server read it all; the limit is 16 KiB
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        head = b'{"task": "debug.noop", "args": {"tag": "'
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        answered = False
        while sent < chunks and not answered:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # the server closed after answering: the answer is in the buffer
                break
            sent += 1
            # Wait (bounded) for the answer to become readable before sending more.
            answered = bool(select.select([sock], [], [], 0.05)[0])
        if sent == chunks:  # end the body, so a server that reads it all answers and the test says so
            sock.sendall(b"0\r\n\r\n")
        status, headers, body = _read_response(sock)
    print(f"chunked 413: answered after {sent} of {chunks} chunks")
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413
    # Checked while streaming: the answer came while most of the body was still unsent.
    assert sent < chunks // 2, f"the 413 came only after {sent} of {chunks} chunks"


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, f"connection closed without a full response: {data!r}"
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        more = sock.recv(65536)
        assert more, "connection closed mid-body"
        body += more
    return int(lines[0].split()[1]), headers, body[:length]


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
