"""Core suite fixtures. ``make test-redis7`` runs this suite with ``TASKQ_SERVER=redis`` to prove the
scripts on Redis 7: the session's server must then really be Redis 7.x, not whatever answered."""

from __future__ import annotations

import os

import pytest
import redis

from taskq.localserver import LocalRedis


def server_identity(url: str) -> tuple[str, str]:
    """(server name, version) from INFO server. Valkey reports a Redis-compatible ``redis_version``
    (7.2.4) beside its own ``server_name``/``valkey_version``, so the name must be checked too."""
    client = redis.Redis.from_url(url)
    try:
        info = client.info("server")
    finally:
        client.close()
    name = str(info.get("server_name") or ("valkey" if "valkey_version" in info else "redis"))
    return name, str(info.get("redis_version", ""))


@pytest.fixture(scope="session", autouse=True)
def _redis7_when_asked(redis_server: LocalRedis) -> None:
    if os.environ.get("TASKQ_SERVER") != "redis":
        return
    name, version = server_identity(redis_server.url)
    assert (name, version.split(".")[0]) == ("redis", "7"), (
        f"TASKQ_SERVER=redis must run on Redis 7.x, but {redis_server.binary} is {name} {version}"
    )
