"""taskq's command layer: every state change declared once, run by any executor.

One ``QueueCommand`` per Lua script (``lease``, ``admin``, ``enqueue``) declares its keys, encodes its
arguments and parses its reply, codes mapped to taskq's exceptions; plain commands on the hot paths
are ``Call``s built the same way. ``executor`` and ``sync_executor`` hold the I/O: redis-py asyncio,
``Wire``, redis-py blocking, ``SyncWire``. ``Taskq``, ``SyncTaskq`` and ``Waiter`` are facades over
both. Nothing in this package opens a connection.
"""

from __future__ import annotations

from taskq.commands.admin import Cancel, DeadPurge, DeadRetry, Promote, Reap, Stats
from taskq.commands.base import Call, QueueCommand, plain
from taskq.commands.enqueue import Enqueue, Planner, PreparedEnqueue
from taskq.commands.lease import Claim, Complete, Fail, Heartbeat, Progress, Release
from taskq.config import QueueConfig
from taskq.keys import GlobalKeys, QueueKeys

#: Every script command, for the checks that compare declarations with the scripts.
ALL: tuple[type[QueueCommand], ...] = (
    Enqueue, Claim, Complete, Heartbeat, Fail, Release, Progress,
    Reap, Promote, Cancel, Stats, DeadRetry, DeadPurge,
)  # fmt: skip


class QueueCommands:
    """Every command bound to one queue: its keys resolved once, on every call's path after that."""

    __slots__ = (
        "cancel", "claim", "complete", "dead_purge", "dead_retry", "enqueue", "fail", "heartbeat", "keys",
        "progress", "promote", "reap", "release", "stats",
    )  # fmt: skip

    def __init__(self, qk: QueueKeys, config: QueueConfig) -> None:
        self.keys = qk
        self.enqueue = Enqueue(qk, config)
        self.claim = Claim(qk, config)
        self.complete = Complete(qk, config)
        self.heartbeat = Heartbeat(qk, config)
        self.fail = Fail(qk, config)
        self.release = Release(qk, config)
        self.progress = Progress(qk, config)
        self.reap = Reap(qk, config)
        self.promote = Promote(qk, config)
        self.cancel = Cancel(qk, config)
        self.stats = Stats(qk, config)
        self.dead_retry = DeadRetry(qk, config)
        self.dead_purge = DeadPurge(qk, config)


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
            commands = self._queues[queue] = QueueCommands(self.keys.queue(queue), self.config)
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
