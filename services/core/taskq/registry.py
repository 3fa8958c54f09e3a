"""The allow-list of tasks a process knows: the built-ins plus the modules ``TASKQ_TASKS`` names.

Both services build it once at start (``CoreSettings.tasks``). A module that fails to import, two
tasks with one name, a task declared wrong: ``TaskLoadError``, naming the module, the task and the
cause, and the service refuses to start (its healthcheck never turns green).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from taskq.errors import UnknownTask
from taskq.tasks import Task, TaskArgs, TaskDefinitionError, Tasks

BUILTIN_MODULE = "taskq.builtin_tasks"


class TaskLoadError(Exception):
    """A task module cannot be loaded. Not a ``ValueError`` on purpose: it must not be folded into a
    settings validation error; the entry points catch it and exit with its one-line message."""

    def __init__(self, module: str, cause: str, task: str | None = None) -> None:
        where = f"TASKQ_TASKS: module {module!r}" + (f", task {task!r}" if task else "")
        super().__init__(f"{where}: {cause}")
        self.module, self.task, self.cause = module, task, cause


class TaskRegistry:
    """The tasks of this process by name. ``origin`` says which module declared each one."""

    def __init__(self, tasks: Iterable[tuple[str, Task[Any]]] = ()) -> None:
        self._tasks: dict[str, Task[Any]] = {}
        self._origin: dict[str, str] = {}
        for module, task in tasks:
            self.add(module, task)

    def add(self, module: str, task: Task[Any]) -> None:
        if self._tasks.get(task.name) is task:
            return  # the same declaration reached through two modules (one imports the other's Tasks)
        if task.name in self._tasks:
            first = self._origin[task.name]
            raise TaskLoadError(module, f"the name is already declared by module {first!r}", task.name)
        self._tasks[task.name] = task
        self._origin[task.name] = module

    @classmethod
    def load(cls, modules: str | Iterable[str] = (), *, debug: bool = False) -> TaskRegistry:
        """The built-ins (and the debug tasks when ``debug``), then each module's tasks."""
        names = _split(modules) if isinstance(modules, str) else list(modules)
        return _load(tuple(names), debug)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task[Any]]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def names(self) -> list[str]:
        return list(self._tasks)

    def origin(self, name: str) -> str:
        return self._origin[name]

    def get(self, name: str) -> Task[Any]:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(name) from None

    def validate(self, name: str, args: Any) -> TaskArgs:
        """The parsed arguments; raises ``UnknownTask`` or pydantic's ``ValidationError``."""
        model: TaskArgs = self.get(name).args_model.model_validate(args)
        return model

    def queues(self) -> set[str]:
        return {task.queue for task in self._tasks.values()}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@lru_cache(maxsize=8)  # one load per process and module list: imports happen once, at start
def _load(modules: tuple[str, ...], debug: bool) -> TaskRegistry:
    from taskq import builtin_tasks

    registry = TaskRegistry((BUILTIN_MODULE, t) for t in builtin_tasks.builtin)
    if debug:
        for task in builtin_tasks.debug:
            registry.add(BUILTIN_MODULE, task)
    for module in dict.fromkeys(modules):  # a module named twice is loaded once
        for task in tasks_of(module):
            registry.add(module, task)
    return registry


def tasks_of(module_name: str) -> list[Task[Any]]:
    """Every task declared on a ``Tasks`` collection found at the top level of the module."""
    try:
        module = importlib.import_module(module_name)
    except TaskDefinitionError as exc:
        raise TaskLoadError(module_name, exc.cause, exc.task) from exc
    except Exception as exc:
        raise TaskLoadError(module_name, f"failed to import: {type(exc).__name__}: {exc}") from exc
    collections = {id(v): v for v in vars(module).values() if isinstance(v, Tasks)}
    found = [task for tasks in collections.values() for task in tasks]
    if not found:
        raise TaskLoadError(module_name, "declares no tasks (no taskq.Tasks with tasks at its top level)")
    return found


__all__ = ["TaskLoadError", "TaskRegistry", "tasks_of"]
