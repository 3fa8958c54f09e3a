"""Loads the Lua scripts in ``lua/`` once per process and registers them with a client.

A script may say ``--@include _lib.lua`` on a line of its own: the helper file is inlined there, so
each script sent to Redis is self-contained (EVALSHA needs one body per SHA). ``register_script``
gives EVALSHA with a NOSCRIPT fallback, so a Redis restart that empties the script cache heals itself.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

_INCLUDE = re.compile(r"^--@include (?P<name>[\w.]+)$", re.MULTILINE)

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
    return _INCLUDE.sub(lambda m: _read(m.group("name")), body)


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

    async def load_all(self, redis: Redis) -> None:
        """SCRIPT LOAD every script (readiness: proves Redis accepts them, warms the cache)."""
        for name in SCRIPT_NAMES:
            script: AsyncScript = getattr(self, name)
            await redis.script_load(script.script)
