"""The shape of a command: one declaration per Lua script (or plain command) that every caller runs.

A ``QueueCommand`` subclass names its script and its keys, in ``KEYS[i]`` order, once (a test reads
the ``local <name> = KEYS[i]`` lines of the script and compares). Bound to one queue it resolves the
queue's own keys once (``Taskq`` keeps one per queue), so a call only fills in the keys that vary
(a job's hash, a claim's record). ``call`` encodes the arguments and returns a ``Call``: the command
to send and how to read its reply (codes mapped to taskq's exceptions in the command, nowhere else).
Executors (``taskq.commands.executor``) do the I/O; nothing here touches a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from taskq.config import QueueConfig
from taskq.keys import QueueKeys
from taskq.scripts import Script, script

T = TypeVar("T")


def text(value: Any) -> str:
    """A reply's string (replies are bytes: clients do not decode)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def identity(reply: Any) -> Any:
    return reply


@dataclass(slots=True)
class Call(Generic[T]):
    """One command ready to send, and how to read its reply. ``script`` None: a plain command, its
    words in ``args``; else EVALSHA of the script with ``keys`` and ``args``."""

    script: Script | None
    keys: Sequence[Any]
    args: Sequence[Any]
    parse: Callable[[Any], T]

    def command(self) -> tuple[Any, ...]:
        if self.script is None:
            return tuple(self.args)
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


def script_loads(calls: Sequence[Call[Any]], indexes: Sequence[int]) -> list[tuple[str, str, str]]:
    """SCRIPT LOAD of each script the calls at ``indexes`` run (each once)."""
    sources = {s.source for i in indexes if (s := calls[i].script) is not None}
    return [("SCRIPT", "LOAD", source) for source in sources]


def plain(*words: Any) -> Call[Any]:
    """A plain Redis command as a ``Call`` (its reply as the client gives it)."""
    return Call(None, (), words, identity)


class QueueCommand:
    """A script's declaration, bound to one queue."""

    #: ``lua/<SCRIPT>.lua``
    SCRIPT: ClassVar[str]
    #: The script's KEYS, in order. A name that is a ``QueueKeys`` attribute is that queue key; any
    #: other name varies per call and is passed to ``keys``. (Repeated per-item keys: ``ITEM_KEYS``.)
    KEYS: ClassVar[tuple[str, ...]]
    ITEM_KEYS: ClassVar[tuple[str, ...]] = ()

    __slots__ = ("_fixed", "_varying", "config", "qk", "script")

    def __init__(self, qk: QueueKeys, config: QueueConfig) -> None:
        self.qk, self.config = qk, config
        self.script = script(self.SCRIPT)
        fixed = [getattr(qk, name) if _is_queue_key(name) else None for name in self.KEYS]
        self._varying = [i for i, key in enumerate(fixed) if key is None]
        #: The queue's keys resolved once; None where a call fills one in.
        self._fixed: list[str | None] = fixed

    def keys(self, *varying: str) -> list[str | None]:
        """The KEYS of one call: the queue's own, with ``varying`` filled in where the names vary."""
        keys = self._fixed.copy()
        for i, key in zip(self._varying, varying, strict=True):
            keys[i] = key
        return keys

    def call(self, keys: Sequence[Any], args: Sequence[Any], parse: Callable[[Any], T]) -> Call[T]:
        return Call(self.script, keys, args, parse)


def _is_queue_key(name: str) -> bool:
    """Whether ``name`` is one of a queue's fixed keys (a computed attribute of ``QueueKeys``)."""
    return isinstance(getattr(QueueKeys, name, None), cached_property | property)
