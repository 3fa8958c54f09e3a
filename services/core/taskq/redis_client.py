"""One way to open a Redis client for taskq: short timeouts, so an outage is an error in about a
second (the producer answers 503 within 2 s) instead of a hang."""

from __future__ import annotations

from redis.asyncio import Redis

from taskq.settings import CoreSettings


def connect(settings: CoreSettings, *, blocking: bool = False, max_connections: int = 64) -> Redis:
    """A client from settings. ``blocking=True`` is for BZPOPMIN: no socket timeout on reads,
    because a blocked wait legitimately lasts longer than any command timeout (the wait itself is
    bounded by its own timeout argument)."""
    return Redis.from_url(
        settings.redis_dsn(),
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=None if blocking else settings.redis_socket_timeout,
        health_check_interval=0,
        retry_on_timeout=False,
        max_connections=max_connections,
        decode_responses=False,
        client_name="taskq",
    )
