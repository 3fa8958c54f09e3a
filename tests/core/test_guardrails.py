"""Redis guardrails: unsafe settings are reported, a full Redis is a clear error that leaves no
half-written job, and an unreachable Redis fails fast instead of hanging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from taskq import (
    CoreSettings,
    EnqueueRequest,
    QueueConfig,
    RedisFull,
    RedisUnavailable,
    Taskq,
    Wire,
    check_redis,
    connect,
)
from taskq.commands.enqueue import PLAIN_MAX_JOBS
from taskq.localserver import LocalRedis, free_port
from taskq.queue import STREAM_CHUNK
from taskq.scripts import Scripts


@pytest.fixture
def own_server(request: pytest.FixtureRequest) -> Iterator[LocalRedis]:
    opts = getattr(request, "param", {})
    with LocalRedis(**opts).running() as server:
        yield server


@pytest.fixture
async def own_client(own_server: LocalRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_server.url)
    yield client
    await client.aclose()


async def test_safe_server_is_healthy_and_scripts_load(own_client: Redis) -> None:
    health = await check_redis(own_client, Scripts.register(own_client))
    assert health.ok, health.problems


@pytest.mark.parametrize("own_server", [{"extra": ("--maxmemory-policy", "allkeys-lru")}], indirect=True)
async def test_evicting_policy_is_reported(own_client: Redis) -> None:
    health = await check_redis(own_client)
    assert not health.ok
    assert any("allkeys-lru" in p and "noeviction" in p for p in health.problems)


@pytest.mark.parametrize("own_server", [{"appendonly": False}], indirect=True)
async def test_persistence_off_is_reported(own_client: Redis) -> None:
    health = await check_redis(own_client)
    assert any("persistence is off" in p for p in health.problems)
    relaxed = await check_redis(own_client, require_persistence=False)
    assert relaxed.ok
    assert any("persistence is off" in w for w in relaxed.warnings)


@pytest.mark.parametrize("own_server", [{"extra": ("--maxmemory", "3mb")}], indirect=True)
@pytest.mark.parametrize(
    ("batch", "over_wire"),
    [(PLAIN_MAX_JOBS + 1, False), (50, False), (50, True), (STREAM_CHUNK * 2, True)],
    ids=["script", "transaction", "transaction-over-wire", "streamed-transaction-over-wire"],
)
async def test_full_redis_gives_clear_error_and_no_half_written_job(
    own_server: LocalRedis, own_client: Redis, queue_name: str, batch: int, over_wire: bool
) -> None:
    wire = Wire(own_server.url) if over_wire else None
    taskq = Taskq(own_client, QueueConfig.of(taskq_prefix="oom", queues="*"), wire=wire)
    accepted = 0

    async def fill() -> None:
        nonlocal accepted
        for _ in range(10_000):
            reqs = [EnqueueRequest("debug.noop", {"tag": "x" * 200}, queue=queue_name) for _ in range(batch)]
            accepted += len(await taskq.enqueue_many(reqs))

    with pytest.raises(RedisFull):
        await fill()
    assert accepted > 0
    stats = await taskq.stats(queue_name)
    job_keys = [
        k async for k in own_client.scan_iter(match=taskq.queue_keys(queue_name).job_prefix + "*", count=1000)
    ]
    # Every accepted job is whole and queued; the refused batch left nothing behind.
    assert stats.pending == accepted == stats.counters["enqueued"] == len(job_keys)
    if wire is not None:
        await wire.aclose()


async def test_unreachable_redis_fails_fast() -> None:
    settings = CoreSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0", environment="test", queues="*")
    client = connect(settings)
    taskq = Taskq.from_settings(client, settings)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable):
        await taskq.enqueue("debug.noop", queue="q")
    assert time.monotonic() - started < 2
    await client.aclose()


async def test_wrong_password_is_reported_as_unavailable() -> None:
    with LocalRedis(password="right-one").running() as server:
        settings = CoreSettings(
            redis_url=f"redis://127.0.0.1:{server.port}/0",
            redis_password=SecretStr("wrong-one"),
            environment="test",
        )
        client = connect(settings)
        with pytest.raises(RedisUnavailable):
            await check_redis(client)
        await client.aclose()


def test_settings_refuse_placeholder_secrets_in_production() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        CoreSettings(environment="production", redis_password=SecretStr("change-me"))


def test_settings_keep_the_password_out_of_the_logged_url() -> None:
    settings = CoreSettings(
        redis_url="redis://redis:6379/0", redis_password=SecretStr("s3cr3t/with:odd@chars")
    )
    assert "s3cr3t" not in settings.redacted_redis_url()
    assert "s3cr3t%2Fwith%3Aodd%40chars" in settings.redis_dsn()


async def test_pooled_connections_survive_a_redis_restart() -> None:
    """After a restart every pooled connection is dead; the next commands must still succeed."""
    with LocalRedis().running() as server:
        settings = CoreSettings(redis_url=server.url, environment="test", queues="*")
        client = connect(settings)
        taskq = Taskq.from_settings(client, settings)
        await asyncio.gather(*(taskq.enqueue("debug.noop", queue="restart") for _ in range(20)))
        assert len(client.connection_pool._available_connections) > 1  # several pooled connections
        server.restart()
        results = await asyncio.gather(*(taskq.enqueue("debug.noop", queue="restart") for _ in range(20)))
        assert all(r.created for r in results)
        assert (await taskq.stats("restart")).pending == 40  # AOF kept the first 20
        await client.aclose()


async def test_frozen_redis_times_out_and_leaves_no_reply_behind() -> None:
    """SIGSTOP: connections stay open and nothing answers. The call must fail within the timeout,
    and once Redis thaws, the next call must read its own reply, not the late one of the first."""
    import signal

    with LocalRedis().running() as server:
        settings = CoreSettings(
            redis_url=server.url, environment="test", redis_socket_timeout=0.5, queues="*"
        )
        client = connect(settings, max_connections=1)
        taskq = Taskq.from_settings(client, settings)
        await taskq.enqueue("debug.noop", queue="frozen")
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisUnavailable):
                await taskq.enqueue("debug.noop", queue="frozen")
            # Bounded by the 0.5 s timeout, not hanging: a stated 2 s margin for a loaded box.
            assert time.monotonic() - started < 0.5 + 2.0
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert await client.ping() is True
        stats = await taskq.stats("frozen")
        assert stats.pending >= 1
        await client.aclose()


def test_a_dotenv_left_by_make_up_does_not_reach_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("TASKQ_PREFIX=from-dotenv\nENVIRONMENT=production\n")
    monkeypatch.chdir(tmp_path)
    settings = CoreSettings()
    assert (settings.taskq_prefix, settings.environment) == ("taskq", "development")
