"""The handler of every task in the contract, and how each one runs.

``Mode.ASYNC`` runs on the event loop (must not block it); ``Mode.THREAD`` runs a blocking function in
the worker's thread pool (its timeout abandons it: a thread cannot be stopped); ``Mode.PROCESS`` runs a
module-level function in a child process, killed at its timeout (CPU-bound work, hard timeouts).
Process handlers take only their arguments: they cannot reach the parent's connections.

``HANDLERS`` is the one place that says how a task runs: the contract (``taskq.tasks``) holds only
names and argument shapes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskq import TaskRegistry
from worker.handlers import debug, email, report, webhook


class Mode(enum.Enum):
    ASYNC = "async"  # a coroutine function (args, ctx) on the event loop
    THREAD = "thread"  # a blocking function (args, ctx) in the thread pool
    PROCESS = "process"  # a module-level function (args) in a killable child process


@dataclass(frozen=True, slots=True)
class Handler:
    fn: Callable[..., Any]
    mode: Mode


HANDLERS: dict[str, Handler] = {
    "send_email": Handler(email.send_email, Mode.THREAD),
    "generate_report": Handler(report.generate_report, Mode.ASYNC),
    "call_webhook": Handler(webhook.call_webhook, Mode.ASYNC),
    "debug.noop": Handler(debug.noop, Mode.ASYNC),
    "debug.sleep": Handler(debug.sleep, Mode.ASYNC),
    "debug.hold": Handler(debug.hold, Mode.THREAD),
    "debug.record": Handler(debug.record, Mode.ASYNC),
    "debug.fail": Handler(debug.fail, Mode.ASYNC),
    "debug.crash": Handler(debug.crash, Mode.THREAD),
    "debug.spin": Handler(debug.spin, Mode.PROCESS),
}

#: What a child process may run, by task name (looked up here, never imported from a message).
PROCESS_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: h.fn for name, h in HANDLERS.items() if h.mode is Mode.PROCESS
}


def handlers_for(registry: TaskRegistry) -> dict[str, Handler]:
    """The handlers of the registry's tasks; fails at start if the contract names a task we cannot run."""
    missing = [spec.name for spec in registry if spec.name not in HANDLERS]
    if missing:
        raise RuntimeError(f"no handler for tasks {missing}")
    return {spec.name: HANDLERS[spec.name] for spec in registry}


__all__ = ["HANDLERS", "PROCESS_FUNCTIONS", "Handler", "Mode", "handlers_for"]
