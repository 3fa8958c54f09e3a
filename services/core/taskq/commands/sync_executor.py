"""The blocking executors: ``taskq.commands.executor``'s adapters for redis-py's blocking client and
``SyncWire``. Same calls, same NOSCRIPT handling, same error translation; only the I/O blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import redis
from redis.exceptions import NoScriptError

from taskq.commands.base import Call, script_loads
from taskq.commands.executor import exec_results, raise_first
from taskq.errors import redis_errors
from taskq.wire import SyncWire

T = TypeVar("T")


class SyncExecutor(Protocol):
    def run(self, call: Call[T]) -> T: ...

    def run_many(self, calls: Sequence[Call[Any]]) -> list[Any]: ...

    def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]: ...


class SyncRedisExecutor:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def run(self, call: Call[T]) -> T:
        with redis_errors():
            try:
                reply = self.redis.execute_command(*call.command())  # type: ignore[no-untyped-call]
            except NoScriptError:
                assert call.script is not None
                self.redis.script_load(call.script.source)
                reply = self.redis.execute_command(*call.command())  # type: ignore[no-untyped-call]
            return call.parse(reply)

    def run_many(self, calls: Sequence[Call[Any]]) -> list[Any]:
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for call in calls:
                pipe.execute_command(*call.command())  # type: ignore[no-untyped-call]
            replies: list[Any] = list(pipe.execute(raise_on_error=False))
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                retry = self.redis.pipeline(transaction=False)
                for load in script_loads(calls, missing):
                    retry.execute_command(*load)  # type: ignore[no-untyped-call]
                for i in missing:
                    retry.execute_command(*calls[i].command())  # type: ignore[no-untyped-call]
                again = retry.execute(raise_on_error=False)
                for i, reply in zip(missing, again[len(again) - len(missing) :], strict=True):
                    replies[i] = reply
            raise_first(replies)
        return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]

    def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        with redis_errors():
            pipe = self.redis.pipeline(transaction=True)
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            return list(pipe.execute())


class SyncWireExecutor:
    def __init__(self, wire: SyncWire) -> None:
        self.wire = wire

    def run(self, call: Call[T]) -> T:
        result: T = self.run_many((call,))[0]
        return result

    def run_many(self, calls: Sequence[Call[Any]]) -> list[Any]:
        with redis_errors():
            replies = self.wire.execute(*(c.command() for c in calls))
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                loads = script_loads(calls, missing)
                again = self.wire.execute(*loads, *(calls[i].command() for i in missing))
                for i, reply in zip(missing, again[len(loads) :], strict=True):
                    replies[i] = reply
            raise_first(replies)
        return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]

    def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        with redis_errors():
            return exec_results(self.wire.execute(("MULTI",), *commands, ("EXEC",)))
