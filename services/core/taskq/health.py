"""Redis guardrails: the settings under which Redis can lose or evict queued jobs, reported plainly.

Readiness probes of both services call ``check_redis``; a policy that evicts keys (anything but
``noeviction``) silently deletes jobs under memory pressure, and persistence off loses every queued
job on a restart, so either makes the service report not-ready with the reason. So does RDB without
AOF: a crash loses every job accepted since the last snapshot (minutes of 202s, where AOF everysec
risks about a second; see docs/reliability.md). ``require_persistence=False`` accepts both with a
warning, for a Redis used knowingly as a cache of work that can be re-sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis import exceptions as rex
from redis.asyncio import Redis

from taskq.errors import redis_errors
from taskq.scripts import Scripts


@dataclass(frozen=True, slots=True)
class RedisHealth:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def check_redis(
    redis: Redis, scripts: Scripts | None = None, *, require_persistence: bool = True
) -> RedisHealth:
    """PING, then the eviction policy and persistence. Raises ``RedisUnavailable`` if unreachable."""
    problems: list[str] = []
    warnings: list[str] = []
    async with redis_errors():
        await redis.ping()
        policy: str | None = None
        save = "unknown"  # CONFIG refused: assume snapshots may be configured rather than cry wolf
        try:
            policy = str((await redis.config_get("maxmemory-policy")).get("maxmemory-policy"))
            save = str((await redis.config_get("save")).get("save") or "")
        except rex.ResponseError:
            pass  # CONFIG is disabled on some managed services: say so below, do not guess
        info = await redis.info("persistence")
        if scripts is not None:
            await scripts.load_all(redis)
    if policy is None:
        warnings.append("maxmemory-policy could not be read (CONFIG GET refused)")
    elif policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy}: Redis may evict queued jobs; set it to noeviction")
    aof = int(info.get("aof_enabled", 0)) == 1
    if not aof and not save:
        message = "persistence is off (no AOF, no RDB snapshots): a Redis restart loses every queued job"
        (problems if require_persistence else warnings).append(message)
    elif not aof:
        message = (
            "AOF is off (RDB snapshots only): a crash loses every job accepted since the last snapshot;"
            " set appendonly yes"
        )
        (problems if require_persistence else warnings).append(message)
    return RedisHealth(problems, warnings)
