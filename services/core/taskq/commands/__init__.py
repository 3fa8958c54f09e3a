"""taskq's command layer: every state change declared once, run by any executor.

One ``QueueCommand`` per Lua script (``lease``, ``admin``, ``enqueue``) declares its keys, encodes its
arguments and parses its reply, codes mapped to taskq's exceptions; plain commands on the hot paths
are ``Call``s built the same way. ``executor`` and ``sync_executor`` hold the I/O: redis-py asyncio,
``Wire``, redis-py blocking, ``SyncWire``. ``Taskq``, ``SyncTaskq`` and ``Waiter`` are facades over
both. Nothing in this package opens a connection.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, get_type_hints

from taskq.commands.admin import Cancel, DeadPurge, DeadRetry, Pause, Promote, Purge, Reap, RemoveQueue, Stats
from taskq.commands.base import Call, QueueCommand, plain
from taskq.commands.enqueue import Enqueue, Planner, PreparedEnqueue
from taskq.commands.lease import Claim, Complete, Fail, Heartbeat, Progress, Release
from taskq.config import QueueConfig
from taskq.keys import GlobalKeys, QueueKeys

#: Every script command, for the checks that compare declarations with the scripts.
ALL: tuple[type[QueueCommand], ...] = (
    Enqueue, Claim, Complete, Heartbeat, Fail, Release, Progress,
    Reap, Promote, Cancel, Stats, DeadRetry, DeadPurge, Pause, Purge, RemoveQueue,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueueCommands:
    """Every command bound to one queue: its keys resolved once, on every call's path after that."""

    keys: QueueKeys
    enqueue: Enqueue
    claim: Claim
    complete: Complete
    heartbeat: Heartbeat
    fail: Fail
    release: Release
    progress: Progress
    reap: Reap
    promote: Promote
    cancel: Cancel
    stats: Stats
    dead_retry: DeadRetry
    dead_purge: DeadPurge
    pause: Pause
    purge: Purge
    remove_queue: RemoveQueue

    @classmethod
    def bind(cls, qk: QueueKeys, config: QueueConfig) -> QueueCommands:
        bound: list[Any] = [command(qk, config) for command in _FIELD_COMMANDS]
        return cls(qk, *bound)


#: The command class of each field after ``keys``, in order (read from the annotations once).
_FIELD_COMMANDS: list[type[QueueCommand]] = [
    get_type_hints(QueueCommands)[f.name] for f in fields(QueueCommands)[1:]
]


class CommandSet:
    """The commands of every queue a process touches, built on first use (a bounded cache: queue
    names come from callers)."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.keys = GlobalKeys(config.prefix)
        self._queues: dict[str, QueueCommands] = {}

    def __getitem__(self, queue: str) -> QueueCommands:
        commands = self._queues.get(queue)
        if commands is None:
            if len(self._queues) >= 4096:
                self._queues.clear()
            commands = self._queues[queue] = QueueCommands.bind(self.keys.queue(queue), self.config)
        return commands


__all__ = [
    "ALL",
    "Call",
    "CommandSet",
    "Planner",
    "PreparedEnqueue",
    "QueueCommand",
    "QueueCommands",
    "plain",
]
