"""Every executor runs a command, alone or pipelined, after Redis forgot the scripts (a restart or
SCRIPT FLUSH): NOSCRIPT is answered by loading the script and sending the call again, once."""

from __future__ import annotations

import redis as sync_redis
from redis.asyncio import Redis

from taskq import EnqueueRequest, QueueConfig, SyncWire, Taskq, Wire
from taskq.commands import CommandSet
from taskq.commands.executor import RedisExecutor, WireExecutor
from taskq.commands.sync_executor import SyncRedisExecutor, SyncWireExecutor


async def test_async_executors_reload_a_forgotten_script(
    redis: Redis, redis_url: str, config: QueueConfig, taskq: Taskq, queue_name: str
) -> None:
    await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue_name)] * 3)
    stats = CommandSet(config)[queue_name].stats
    wire = Wire(redis_url)
    try:
        for executor in (RedisExecutor(redis), WireExecutor(wire)):
            await redis.script_flush()
            assert (await executor.run(stats())).pending == 3
            await redis.script_flush()
            both = await executor.run_many([stats(), stats()])
            assert [s.pending for s in both] == [3, 3]
    finally:
        await wire.aclose()


async def test_blocking_executors_reload_a_forgotten_script(
    redis: Redis, redis_url: str, config: QueueConfig, taskq: Taskq, queue_name: str
) -> None:
    await taskq.enqueue_many([EnqueueRequest("debug.noop", {}, queue=queue_name)] * 2)
    stats = CommandSet(config)[queue_name].stats
    client = sync_redis.Redis.from_url(redis_url)
    wire = SyncWire(redis_url)
    try:
        for executor in (SyncRedisExecutor(client), SyncWireExecutor(wire)):
            await redis.script_flush()
            assert executor.run(stats()).pending == 2
            await redis.script_flush()
            assert [s.pending for s in executor.run_many([stats(), stats()])] == [2, 2]
    finally:
        wire.close()
        client.close()
