"""One way to open a Redis client for taskq: short timeouts, so an outage is an error in about a
second (the producer answers 503 within 2 s) instead of a hang, and commands packed in C.

redis-py's asyncio connections pack commands in Python, re-joining a growing buffer per argument;
an enqueue of 1,000 jobs (7,000 arguments) spent ~12 ms there. hiredis (already the reply parser)
packs the same bytes in ~2 ms, so taskq's connections use it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from taskq.settings import CoreSettings


class _HiredisPacking:
    """Two changes to redis-py's asyncio connections, both on every command's path.

    Packing in C (see the module docstring). And the command timeout applied to reads only: with
    ``socket_timeout`` set, redis-py wraps every *send* in ``asyncio.wait_for``, which on Python 3.11
    creates a task per command (two extra event-loop turns, ~25% of an enqueue's client CPU here).
    A send completes at once unless the kernel buffer is full, and a Redis that stops answering is
    caught by the read timeout, which uses ``asyncio.timeout`` (no task). A timed-out read drops the
    connection, exactly as redis-py's own socket timeout does.
    """

    command_timeout: float | None

    def __init__(self, *args: Any, command_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command_timeout = command_timeout

    async def read_response(
        self, disable_decoding: bool = False, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        # The command timeout must act as redis-py's socket timeout does (raise TimeoutError and
        # drop the connection, whose reply is still due), not as an explicit ``timeout`` (which
        # returns None and leaves the reply in the socket for the next command to read). So it is
        # lent as socket_timeout for the read only; a connection serves one caller at a time.
        self.socket_timeout = self.command_timeout
        try:
            return await super().read_response(  # type: ignore[misc]
                disable_decoding=disable_decoding, timeout=timeout, **kwargs
            )
        finally:
            self.socket_timeout = None

    def pack_command(self, *args: Any) -> list[bytes]:
        # Same contract as redis-py's: a command name with a space ("CONFIG GET") is split in two.
        first = args[0]
        if (isinstance(first, str) and " " in first) or (isinstance(first, bytes) and b" " in first):
            args = (*first.split(), *args[1:])
        return [hiredis.pack_command(args)]


class FastConnection(_HiredisPacking, Connection):
    pass


class FastSSLConnection(_HiredisPacking, SSLConnection):
    pass


class FastUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


_BY_SCHEME: dict[str, type[Connection] | type[UnixDomainSocketConnection]] = {
    "redis": FastConnection,
    "rediss": FastSSLConnection,
    "unix": FastUnixConnection,
}


def connect(settings: CoreSettings, *, blocking: bool = False, max_connections: int = 64) -> Redis:
    """A client from settings. ``blocking=True`` is for BZPOPMIN: no socket timeout on reads,
    because a blocked wait legitimately lasts longer than any command timeout (the wait itself is
    bounded by its own timeout argument, and ``Taskq.wait_for_work`` bounds the whole call).

    A command that meets a *closed connection* is retried once on a fresh one: after a Redis
    restart every pooled connection is dead, and without this each would fail one request (a 503)
    although Redis is back. Timeouts are never retried (the command may still be running), so an
    outage still surfaces within the connect and socket timeouts.
    """
    dsn = settings.redis_dsn()
    return Redis.from_url(
        dsn,
        connection_class=_BY_SCHEME[urlsplit(dsn).scheme],
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=None,
        command_timeout=None if blocking else settings.redis_socket_timeout,
        health_check_interval=0,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        max_connections=max_connections,
        decode_responses=False,
        client_name="taskq",
    )


def connect_url(url: str, **kwargs: Any) -> Redis:
    """``connect`` for a bare URL (tests, benchmarks, tools)."""
    return connect(CoreSettings(redis_url=url, environment="test"), **kwargs)
