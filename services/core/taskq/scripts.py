"""Loads the Lua scripts in ``lua/`` once per process and registers them with a client.

A script may say ``--@include _lib.lua`` on a line of its own: the helper file is inlined there, so
each script sent to Redis is self-contained (EVALSHA needs one body per SHA). ``--@const NAME`` lines
take their value from ``taskq.constants``, the one place Python and Lua share numbers. ``register_script``
gives EVALSHA with a NOSCRIPT fallback, so a Redis restart that empties the script cache heals itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from taskq import constants

_INCLUDE = re.compile(r"^--@include (?P<name>[\w.]+)$", re.MULTILINE)
_CONST = re.compile(r"^--@const (?P<name>[A-Z][A-Z0-9_]*)$", re.MULTILINE)

SCRIPT_NAMES = (
    "enqueue",
    "claim",
    "heartbeat",
    "complete",
    "fail",
    "release",
    "reap",
    "promote",
    "cancel",
    "dead_retry",
    "dead_purge",
    "progress",
    "stats",
)


def _read(name: str) -> str:
    return resources.files("taskq").joinpath("lua", name).read_text(encoding="utf-8")


@functools.cache
def script_source(name: str) -> str:
    """The full text of ``lua/<name>.lua`` with its includes inlined."""
    body = _read(f"{name}.lua")
    return _with_constants(_INCLUDE.sub(lambda m: _read(m.group("name")), body))


def _with_constants(text: str) -> str:
    """Each ``--@const NAME`` line becomes ``local NAME = <value>`` from ``taskq.constants``.

    An unknown name fails here, at load; a line left as it was would read as an undefined global."""

    def value(match: re.Match[str]) -> str:
        number = getattr(constants, match.group("name"))
        if not isinstance(number, int):
            raise TypeError(f"taskq.constants.{match.group('name')} is not an int")
        return f"local {match.group('name')} = {number}"

    return _CONST.sub(value, text)


@dataclass(frozen=True, slots=True)
class Scripts:
    enqueue: AsyncScript
    claim: AsyncScript
    heartbeat: AsyncScript
    complete: AsyncScript
    fail: AsyncScript
    release: AsyncScript
    reap: AsyncScript
    promote: AsyncScript
    cancel: AsyncScript
    dead_retry: AsyncScript
    dead_purge: AsyncScript
    progress: AsyncScript
    stats: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(**{name: redis.register_script(script_source(name)) for name in SCRIPT_NAMES})

    async def run_pipelined(
        self,
        redis: Redis,
        calls: Sequence[tuple[AsyncScript, Sequence[Any], Sequence[Any]]],
        prelude: Callable[[Pipeline], object] | None = None,
    ) -> list[Any]:
        """Run several script calls (after ``prelude``'s plain commands) in one round trip.

        redis-py's own pipelined scripts ask SCRIPT EXISTS before every execute, which doubles the
        round trips; this sends EVALSHA straight away and, only when Redis answers NOSCRIPT (a
        restart or SCRIPT FLUSH emptied its cache), loads the scripts and re-runs the calls that
        failed. Returns the script replies only (errors as exception objects, in call order).
        """
        pipe = redis.pipeline(transaction=False)
        if prelude is not None:
            prelude(pipe)
        skip = len(pipe.command_stack)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies: list[Any] = list(await pipe.execute(raise_on_error=False))[skip:]
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.load_all(redis)
            retry = redis.pipeline(transaction=False)
            for i in missing:
                script, keys, args = calls[i]
                retry.evalsha(script.sha, len(keys), *keys, *args)
            for i, reply in zip(missing, await retry.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        return replies

    async def load_all(self, redis: Redis) -> None:
        """SCRIPT LOAD every script (readiness: proves Redis accepts them, warms the cache)."""
        for name in SCRIPT_NAMES:
            script: AsyncScript = getattr(self, name)
            await redis.script_load(script.script)
