"""SyncWire, the blocking lean connection behind SyncTaskq: replies in step, restarts survived without
sending a call twice, timeouts that drop the connection, refusals that say what they are."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from taskq import (
    CoreSettings,
    EnqueueRequest,
    QueueConfig,
    RedisFull,
    RedisUnavailable,
    SyncTaskq,
    SyncWire,
    connect_sync,
)
from taskq.localserver import LocalRedis


def test_calls_pipeline_and_error_replies_come_back_in_order(redis_url: str) -> None:
    wire = SyncWire(redis_url)
    ok, bad, echo = wire.execute(("PING",), ("NOSUCHCOMMAND",), ("ECHO", "é"))
    assert ok == b"PONG"
    assert echo == "é".encode()
    assert isinstance(bad, redis.ResponseError)
    assert "unknown command" in str(bad).lower()
    wire.close()


def test_a_timed_out_call_drops_the_connection_so_replies_stay_in_step(redis_url: str) -> None:
    wire, other = SyncWire(redis_url), redis.Redis.from_url(redis_url)
    key = f"sync-wire-{os.getpid()}-{time.monotonic_ns()}"
    with pytest.raises(TimeoutError):
        wire.execute(("BLPOP", key, "1"), timeout=0.05)
    other.rpush(key, "late")  # had the socket been kept, this would answer the next call
    assert wire.execute(("PING",)) == [b"PONG"]
    assert other.llen(key) == 1
    other.delete(key)
    other.close()
    wire.close()


def test_a_restart_between_calls_is_noticed_before_sending(config: QueueConfig, queue_name: str) -> None:
    with LocalRedis().running() as server:
        client = connect_sync(CoreSettings(redis_url=server.url, environment="test"))
        taskq = SyncTaskq(client, config, wire=SyncWire(server.url))
        taskq.enqueue("debug.noop", queue=queue_name)
        server.restart(kill=True)
        # The old socket is dead; the enqueue must go out once, on a new one, and succeed.
        job = taskq.enqueue("debug.noop", queue=queue_name)
        assert taskq.get_job(job.id) is not None
        assert client.zcard(f"{config.prefix}:{{{queue_name}}}:pending") == 2  # AOF kept the first
        taskq.close()
        client.close()


def test_refusals_are_clear(config: QueueConfig, queue_name: str) -> None:
    with LocalRedis(password="right", extra=("--maxmemory", "2mb")).running() as server:
        wrong = SyncWire(server.url.replace("right", "wrong"))
        with pytest.raises(redis.ResponseError, match=r"WRONGPASS|invalid"):
            wrong.execute(("PING",))
        client = connect_sync(CoreSettings(redis_url=server.url, environment="test"))
        taskq = SyncTaskq(client, config, wire=SyncWire(server.url))
        batch = [EnqueueRequest("debug.noop", {"tag": "x" * 200}, queue=queue_name)] * 50

        def fill() -> None:
            for _ in range(10_000):
                taskq.enqueue_many(batch)

        with pytest.raises(RedisFull):
            fill()
        taskq.close()
        client.close()


def test_a_frozen_redis_is_a_timeout_not_a_hang(config: QueueConfig, queue_name: str) -> None:
    with LocalRedis().running() as server:
        client = connect_sync(CoreSettings(redis_url=server.url, environment="test"))
        taskq = SyncTaskq(client, config, wire=SyncWire(server.url, command_timeout=0.5))
        taskq.enqueue("debug.noop", queue=queue_name)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisUnavailable):
                taskq.enqueue("debug.noop", queue=queue_name)
            assert time.monotonic() - started < 5
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert taskq.enqueue("debug.noop", queue=queue_name).created  # and it recovers
        taskq.close()
        client.close()
