"""Scenario 8: Redis is private and password-protected; producer and worker run locked down."""

from __future__ import annotations

import socket

import pytest

from e2e.harness import Api, Fleet

APP_UID = 10001
PROBE = (
    "import os\n"
    "print(os.getuid(), os.getgid())\n"
    "try:\n"
    "    open('/probe', 'w')\n"
    "    print('root filesystem writable')\n"
    "except OSError as exc:\n"
    "    print(exc.strerror)\n"
)


def _resp(command: bytes) -> bytes:
    """One raw RESP exchange with Redis, as any container on the network could attempt it."""
    with socket.create_connection(("redis", 6379), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(256)


def test_8a_redis_port_is_not_published_on_the_host(fleet: Fleet) -> None:
    redis = fleet.one("redis")
    redis.reload()
    assert not redis.attrs["HostConfig"].get("PortBindings"), redis.attrs["HostConfig"]["PortBindings"]
    published = {port: binds for port, binds in redis.attrs["NetworkSettings"]["Ports"].items() if binds}
    assert published == {}, f"Redis ports bound on the host: {published}"


def test_8b_a_client_without_the_password_gets_noauth() -> None:
    assert _resp(b"PING\r\n").startswith(b"-NOAUTH"), "Redis answered a client that gave no password"
    assert _resp(b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n").startswith(b"-NOAUTH")
    wrong = _resp(b"*2\r\n$4\r\nAUTH\r\n$5\r\nguess\r\n")
    assert wrong.startswith((b"-WRONGPASS", b"-ERR invalid password")), wrong


@pytest.mark.parametrize("service", ["producer", "worker"])
def test_8c_services_run_as_non_root_on_a_read_only_root_filesystem(fleet: Fleet, service: str) -> None:
    container = fleet.containers(service)[0]
    container.reload()
    host = container.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] > 0, "no memory limit"

    code, output = container.exec_run(["python3", "-c", PROBE])
    assert isinstance(output, bytes)
    uid_line, write_line = output.decode().strip().splitlines()
    assert code == 0, output
    assert uid_line == f"{APP_UID} {APP_UID}"
    assert write_line == "Read-only file system"
    # Every process in the container, PID 1 included, runs as the app user.
    code, status = container.exec_run(["cat", "/proc/1/status"])
    assert code == 0, status
    assert isinstance(status, bytes)
    uids = next(line for line in status.decode().splitlines() if line.startswith("Uid:")).split()[1:]
    assert set(uids) == {str(APP_UID)}


def test_8d_the_api_refuses_requests_without_the_token(api: Api) -> None:
    response = api.session.post(
        api.base_url + "/send-email",
        json={"recipient_email": "x@example.com", "subject": "s", "body": "b"},
        headers={"Authorization": None},  # drop the session's token
        timeout=5,
    )
    assert response.status_code == 401
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
