"""Executors: the I/O under the commands. One protocol, one adapter per kind of connection.

Each runs a ``Call`` alone, several calls in one round trip (``run_many``), or the commands of a
MULTI/EXEC; the ``Wire`` one also runs a call behind a blocking pop (the waiter's BZPOPMIN + claim).
EVALSHA goes first; only when Redis answers NOSCRIPT (a restart or SCRIPT FLUSH emptied its cache)
is the script loaded and the call sent again, once. redis-py's exceptions become taskq's here.
The blocking twins live in ``taskq.commands.sync_executor``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from taskq.commands.base import Call, script_loads
from taskq.errors import RedisUnavailable, redis_errors
from taskq.wire import Wire

T = TypeVar("T")


class Executor(Protocol):
    async def run(self, call: Call[T]) -> T: ...

    async def run_many(
        self, calls: Sequence[Call[Any]], prelude: Callable[[Pipeline], object] | None = None
    ) -> list[Any]: ...

    async def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]: ...


def raise_first(replies: Sequence[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


def exec_results(replies: Sequence[Any]) -> list[Any]:
    """The results of a MULTI/.../EXEC sent as one call; the first error is raised. A command
    refused while queueing (a full Redis) made Redis discard the whole transaction."""
    *queued, results = replies
    if isinstance(results, Exception):
        # EXECABORT: the refusal that caused it is among the queueing replies.
        raise next((r for r in queued if isinstance(r, Exception)), results)
    raise_first(results)
    return list(results)


class RedisExecutor:
    """Over redis-py's asyncio client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def run(self, call: Call[T]) -> T:
        async with redis_errors():
            if call.script is None:
                return call.parse(await self.redis.execute_command(*call.args))  # type: ignore[no-untyped-call]
            keys, args = call.keys, call.args
            try:
                reply = await self.redis.evalsha(call.script.sha, len(keys), *keys, *args)
            except NoScriptError:
                await self.redis.script_load(call.script.source)
                reply = await self.redis.evalsha(call.script.sha, len(keys), *keys, *args)
            return call.parse(reply)

    async def run_many(
        self, calls: Sequence[Call[Any]], prelude: Callable[[Pipeline], object] | None = None
    ) -> list[Any]:
        """The calls (after ``prelude``'s commands, whose replies are dropped) in one round trip;
        their parsed replies in order. The first error is raised.

        redis-py's own pipelined scripts ask SCRIPT EXISTS before every execute, which doubles the
        round trips: this sends EVALSHA straight away and re-runs only the calls answered NOSCRIPT."""
        async with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            if prelude is not None:
                prelude(pipe)
            skip = len(pipe.command_stack)
            for call in calls:
                pipe.execute_command(*call.command())
            replies: list[Any] = list(await pipe.execute(raise_on_error=False))[skip:]
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                retry = self.redis.pipeline(transaction=False)
                for load in script_loads(calls, missing):
                    retry.execute_command(*load)
                for i in missing:
                    retry.execute_command(*calls[i].command())
                again = list(await retry.execute(raise_on_error=False))
                for i, reply in zip(missing, again[len(again) - len(missing) :], strict=True):
                    replies[i] = reply
            raise_first(replies)
        return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]

    async def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``commands`` in MULTI/EXEC; their results (the first error raised: a command refused while
        queueing, a full Redis, aborts the whole transaction)."""
        async with redis_errors():
            pipe = self.redis.pipeline(transaction=True)
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())


class WireExecutor:
    """Over a lean ``Wire`` connection (the producer's enqueues, the waiter's wake-up)."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    async def _send(
        self, commands: Sequence[tuple[Any, ...]], calls: Sequence[Call[Any]], timeout: float | None
    ) -> list[Any]:
        """``commands`` then the calls, in one write; on NOSCRIPT the scripts that were missing are
        loaded and their calls (never ``commands``: a pop is not run twice) sent again."""
        replies = await self.wire.execute(*commands, *(c.command() for c in calls), timeout=timeout)
        skip = len(commands)
        missing = [i for i, reply in enumerate(replies[skip:]) if isinstance(reply, NoScriptError)]
        if missing:
            loads = script_loads(calls, missing)
            again = await self.wire.execute(*loads, *(calls[i].command() for i in missing), timeout=timeout)
            for i, reply in zip(missing, again[len(loads) :], strict=True):
                replies[skip + i] = reply
        raise_first(replies)
        return replies

    async def run(self, call: Call[T]) -> T:
        async with redis_errors():
            return call.parse((await self._send((), (call,), None))[0])

    async def run_many(
        self, calls: Sequence[Call[Any]], prelude: Callable[[Pipeline], object] | None = None
    ) -> list[Any]:
        if prelude is not None:
            raise TypeError("a Wire runs no redis-py pipeline prelude")
        async with redis_errors():
            replies = await self._send((), calls, None)
        return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]

    async def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        async with redis_errors():
            return exec_results(await self.wire.execute(("MULTI",), *commands, ("EXEC",)))

    async def _blocked(self, block: tuple[Any, ...], calls: Sequence[Call[Any]], timeout: float) -> list[Any]:
        async with redis_errors():
            try:
                return await self._send((block,), calls, timeout)
            except TimeoutError as exc:
                raise RedisUnavailable("Redis did not answer a blocking wait in time") from exc

    async def blocking(self, block: tuple[Any, ...], timeout: float) -> Any:
        """A blocking command (BZPOPMIN) alone; ``timeout`` bounds the whole exchange."""
        return (await self._blocked(block, (), timeout))[0]

    async def behind(self, block: tuple[Any, ...], call: Call[T], timeout: float) -> tuple[Any, T]:
        """A blocking command (BZPOPMIN) with ``call`` pipelined behind it on the same connection:
        Redis runs the call the moment the block ends, so its reply comes with the wake-up. After a
        restart emptied the script cache the call is sent again, never the block (its marker is
        consumed, and the call needs none). ``timeout`` bounds the whole exchange."""
        replies = await self._blocked(block, (call,), timeout)
        return replies[0], call.parse(replies[1])
