"""Readiness refuses a Redis that persists by RDB snapshots only: a crash would lose every job
accepted since the last snapshot (minutes of 202s), far past the promise's one-second fsync window."""

from __future__ import annotations

from taskq.health import check_redis
from taskq.localserver import LocalRedis
from taskq.redis_client import connect_url


async def test_a_redis_with_snapshots_but_no_aof_is_not_ready() -> None:
    with LocalRedis(appendonly=False).running() as server:
        client = connect_url(server.url)
        try:
            await client.config_set("save", "3600 1")
            health = await check_redis(client)
            assert not health.ok
            assert any("AOF is off" in problem for problem in health.problems)
            relaxed = await check_redis(client, require_persistence=False)
            assert relaxed.ok, "REQUIRE_PERSISTENCE=false accepts it, with a warning"
            assert any("AOF is off" in warning for warning in relaxed.warnings)
        finally:
            await client.aclose()
