"""``API_WORKERS=2``: ``python -m producer`` runs two uvicorn worker processes, and both serve.

Which process answered a request is read from the kernel, not from anything the app says: the
server side of the client's TCP connection (``/proc/net/tcp``) is a socket inode, and exactly one
process holds that inode open (``/proc/<pid>/fd``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from taskq.localserver import LocalRedis, free_port

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")


def children(pid: int) -> set[int]:
    """The server processes uvicorn started (multiprocessing spawns them; its resource tracker, also a
    child, is not one)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            is_child = int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid
            if is_child and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                out.add(int(stat.parent.name))
        except OSError:
            continue  # gone meanwhile
    return out


def socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the established 127.0.0.1 socket local_port -> remote_port."""
    want = (f"0100007F:{local_port:04X}", f"0100007F:{remote_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == want and fields[3] == "01":  # 01: ESTABLISHED
            return int(fields[9])
    return None


def owner(inode: int, pids: set[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    return None


@pytest.fixture
def two_workers(redis_server: LocalRedis, prefix: str, tmp_path: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    env = {
        **os.environ,
        "API_HOST": "127.0.0.1", "API_PORT": str(port), "REDIS_URL": redis_server.url, "TASKQ_PREFIX": prefix,
        "ENVIRONMENT": "test", "API_WORKERS": "2", "DEBUG_TASKS": "true",
    }  # fmt: skip
    with (tmp_path / "producer.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "producer"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        # Ready when both worker processes are up and each holds its event subscription in Redis.
        while len(children(proc.pid)) < 2 or _subscribers(redis_server.url) < 2:
            assert proc.poll() is None, (tmp_path / "producer.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "producer.log").read_text()[-3000:]
            time.sleep(0.05)  # child processes starting: nothing to subscribe to
        yield proc.pid, port
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, (tmp_path / "producer.log").read_text()[-3000:]


def _subscribers(url: str) -> int:
    """Connections holding a pattern subscription (each producer process keeps one for ?wait=)."""
    with redis.Redis.from_url(url) as client:
        return sum(1 for c in client.client_list() if int(c.get("psub", 0)) > 0)


def test_two_api_workers_are_two_processes_and_both_answer(two_workers: tuple[int, int]) -> None:
    parent, port = two_workers
    workers = children(parent)
    assert len(workers) == 2, workers
    answered: dict[int, int] = {}
    # Fresh connections until each process has answered one (the kernel hands each new connection to
    # whichever process accepts first). Bounded by time, not by a count: a few hundred connections
    # take well under a second, during which a loaded box may not schedule one of the processes.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            inode = socket_inode(port, sock.getsockname()[1])
            assert inode is not None, "the server side of the connection is not in /proc/net/tcp"
            pid = owner(inode, workers)
            assert pid is not None, f"no worker process of {parent} holds the connection"
            answered[pid] = answered.get(pid, 0) + 1
        if len(answered) == 2:
            break
    print(f"api workers: connections answered per process {answered}")
    assert set(answered) == workers, f"answered by {answered}, workers {workers}"
    # Each worker process runs the whole app: enqueue and read work through either of them.
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        job = client.post("/jobs", json={"task": "debug.noop"}).json()
        assert client.get(f"/jobs/{job['id']}").json()["status"] == "queued"
