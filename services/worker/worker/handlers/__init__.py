"""The worker's side of the built-in tasks: their handlers (declared in ``taskq.builtin_tasks`` by
import path, resolved here like any user task's).

How a task runs comes from its declaration and its handler (``taskq.tasks.Task.resolve``):
``async def`` on the event loop (must not block it); plain ``def`` in the worker's thread pool (its
timeout abandons it: a thread cannot be stopped); ``isolated=True`` in a child process killed at its
timeout (CPU-bound work, hard timeouts).
"""

from __future__ import annotations

from taskq import TaskLoadError, TaskRegistry
from taskq.tasks import Handler, TaskDefinitionError


def handlers_for(registry: TaskRegistry) -> dict[str, Handler]:
    """Every task's handler, resolved once at start; a task the worker cannot run refuses the start."""
    handlers: dict[str, Handler] = {}
    for task in registry:
        try:
            handlers[task.name] = task.resolve()
        except TaskDefinitionError as exc:
            raise TaskLoadError(registry.origin(task.name), exc.cause, task.name) from exc
    return handlers


__all__ = ["Handler", "handlers_for"]
