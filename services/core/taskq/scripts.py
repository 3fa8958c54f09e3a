"""Finds the Lua scripts in ``lua/``, loads them once per process, and names each by its SHA.

A script may say ``--@include _lib.lua`` on a line of its own: the helper file is inlined there, so
each script sent to Redis is self-contained (EVALSHA needs one body per SHA). ``--@const NAME`` lines
take their value from ``taskq.constants``, the one place Python and Lua share numbers. Files whose
name starts with ``_`` are includes, every other ``lua/*.lua`` is a script: the list is the directory,
written nowhere else. Callers send EVALSHA and, on NOSCRIPT (a restart or SCRIPT FLUSH emptied
Redis's cache), load the script and send it again (``taskq.commands.executor``).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from taskq import constants

_INCLUDE = re.compile(r"^--@include (?P<name>[\w.]+)$", re.MULTILINE)
_CONST = re.compile(r"^--@const (?P<name>[A-Z][A-Z0-9_]*)$", re.MULTILINE)


def _read(name: str) -> str:
    return resources.files("taskq").joinpath("lua", name).read_text(encoding="utf-8")


@functools.cache
def script_source(name: str) -> str:
    """The full text of ``lua/<name>.lua`` with its includes inlined."""
    body = _read(f"{name}.lua")
    return _with_constants(_INCLUDE.sub(lambda m: _read(m.group("name")), body))


def _with_constants(text: str) -> str:
    """Each ``--@const NAME`` line becomes ``local NAME = <value>`` from ``taskq.constants`` (a tuple
    of ints becomes a Lua array).

    An unknown name fails here, at load; a line left as it was would read as an undefined global."""

    def value(match: re.Match[str]) -> str:
        number = getattr(constants, match.group("name"))
        if isinstance(number, tuple) and all(type(n) is int for n in number):
            return f"local {match.group('name')} = {{{', '.join(map(str, number))}}}"  # a Lua array
        if not isinstance(number, int):
            raise TypeError(f"taskq.constants.{match.group('name')} is not an int or a tuple of ints")
        return f"local {match.group('name')} = {number}"

    return _CONST.sub(value, text)


def script_names() -> tuple[str, ...]:
    """Every script of ``lua/`` (includes, named ``_*.lua``, left out), sorted."""
    files = resources.files("taskq").joinpath("lua").iterdir()
    return tuple(sorted(f.name[:-4] for f in files if f.name.endswith(".lua") and not f.name.startswith("_")))


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    #: EVALSHA's name for it: the SHA1 of the source Redis is sent.
    sha: str

    @classmethod
    def load(cls, name: str) -> Script:
        source = script_source(name)
        return cls(name, source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


@functools.cache
def all_scripts() -> Mapping[str, Script]:
    return {name: Script.load(name) for name in script_names()}


def script(name: str) -> Script:
    return all_scripts()[name]


class Scripts:
    """Every script, for readiness checks that load them all (SCRIPT LOAD proves Redis accepts them)."""

    def __init__(self) -> None:
        self.by_name = all_scripts()

    @classmethod
    def register(cls, redis: Any = None) -> Scripts:  # the client is unused: SHAs need none
        return cls()

    async def load_all(self, redis: Any) -> None:
        """SCRIPT LOAD every script over an asyncio redis-py client (warms the cache)."""
        for s in self.by_name.values():
            await redis.script_load(s.source)
