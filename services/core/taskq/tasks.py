"""The public task API: declare a task (its name, its arguments model, its options, its handler).

A user module declares tasks on a ``Tasks`` collection, either with the handler beside the contract::

    tasks = Tasks()

    class Thumbnail(TaskArgs):
        width: int = Field(gt=0, le=4096)

    @tasks.task("images.thumbnail", queue="images", isolated=True)
    def thumbnail(args: Thumbnail, ctx: JobContext) -> dict[str, int]: ...

or with the contract alone, its handler named by import path, so the producer can load the contract
without the handler's dependencies (Pillow, a partner SDK)::

    thumbnail = tasks.declare("images.thumbnail", Thumbnail, handler="myapp.work:thumbnail")

The built-in tasks are declared the second way (``taskq.builtin_tasks``). ``TASKQ_TASKS`` names the
modules to load (``taskq.registry``); the registry they make is the allow-list: nothing is ever
imported from a name found in a message.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from taskq.constants import DEFAULT_PRIORITY, MAX_PRIORITY
from taskq.context import JobContext
from taskq.keys import validate_queue_name
from taskq.results import EnqueueRequest

#: Task names: what ``POST /jobs`` accepts in ``task`` and what a job carries.
TASK_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,100}$"
TASK_NAME_RE = re.compile(TASK_NAME_PATTERN)
#: The bounds of the per-task options, the same as ``POST /jobs`` accepts per job.
MAX_ATTEMPTS_LIMIT = 100
MAX_TIMEOUT_SECONDS = 7 * 86_400


class TaskArgs(BaseModel):
    """Base of every arguments model: unknown fields, NaN and Infinity are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=100_000)


A = TypeVar("A", bound=TaskArgs)
Mode = Literal["async", "thread", "process"]


class TaskDefinitionError(ValueError):
    """A task declared wrong (bad name, option, or handler signature). Raised where it is declared,
    so the service that loads the module refuses to start, naming the task and the cause."""

    def __init__(self, task: str, cause: str) -> None:
        super().__init__(f"task {task!r}: {cause}")
        self.task, self.cause = task, cause


@dataclass(frozen=True, slots=True, eq=False)
class Task(Generic[A]):
    """One declared task: the contract (name, args model, options) and its handler.

    ``handler`` is the function, or its import path ``"module:function"`` (resolved by the worker
    only, so the contract loads without the handler's dependencies)."""

    name: str
    args_model: type[A]
    description: str = ""
    queue: str = "default"
    priority: int = DEFAULT_PRIORITY
    #: None: the deployment's ``DEFAULT_MAX_ATTEMPTS`` / ``DEFAULT_TIMEOUT_SECONDS``.
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    #: (base, max) seconds of the retry backoff; None: the deployment's ``RETRY_BACKOFF_*``.
    retry_backoff: tuple[float, float] | None = None
    #: Run in a child process killed at the timeout (CPU-bound work, hard timeouts).
    isolated: bool = False
    #: Registered only when ``DEBUG_TASKS`` is on (tests and benchmarks).
    debug: bool = False
    handler: Callable[..., Any] | str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_options(self)

    def json_schema(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()

    def options(self) -> dict[str, Any]:
        """The options as the API shows them (None: the deployment's default)."""
        backoff = self.retry_backoff
        return {
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "timeout_seconds": self.timeout_seconds,
            "retry_backoff_seconds": None if backoff is None else {"base": backoff[0], "max": backoff[1]},
            "isolated": self.isolated,
        }

    def validate(self, args: A | Mapping[str, Any] | None) -> A:
        """The arguments as the model (an instance of it is taken as it is)."""
        if isinstance(args, self.args_model):
            return args
        return self.args_model.model_validate({} if args is None else args)

    def request(
        self,
        args: A | Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay_seconds: float = 0,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        idempotency_key: str | None = None,
    ) -> EnqueueRequest:
        """An enqueue of this task with its options filled in (raises pydantic's ``ValidationError``
        for bad args). The one place a job's defaults come from its task."""
        model = self.validate(args)
        return EnqueueRequest(
            task=self.name,
            args=model.model_dump(mode="json"),
            queue=queue or self.queue,
            priority=self.priority if priority is None else priority,
            delay_ms=max(0, int(delay_seconds * 1000)),
            max_attempts=max_attempts or self.max_attempts,
            timeout=timeout_seconds or self.timeout_seconds,
            idempotency_key=idempotency_key,
        )

    def resolve(self) -> Handler:
        """The handler and how it runs (the worker calls this once per task at start). Raises
        ``TaskDefinitionError`` when it cannot be imported or its signature does not fit."""
        fn = _import_handler(self.name, self.handler) if isinstance(self.handler, str) else self.handler
        if fn is None:
            raise TaskDefinitionError(self.name, "has no handler")
        if isinstance(fn, Task):  # the import path named a decorated function
            fn = fn.handler
        if not callable(fn):
            raise TaskDefinitionError(self.name, f"handler {self.handler!r} is not a function")
        args_type = _check_signature(self.name, fn)
        if args_type is not self.args_model:
            raise TaskDefinitionError(
                self.name,
                f"the handler takes {args_type.__name__}, the contract declares {self.args_model.__name__}",
            )
        is_async = inspect.iscoroutinefunction(fn)
        if self.isolated:
            if is_async:
                raise TaskDefinitionError(self.name, "an isolated handler must be a plain def, not async def")
            if "<locals>" in fn.__qualname__:
                raise TaskDefinitionError(self.name, "an isolated handler must be defined at module level")
            return Handler(fn, "process", f"{fn.__module__}:{fn.__qualname__}")
        return Handler(fn, "async" if is_async else "thread", f"{fn.__module__}:{fn.__qualname__}")


@dataclass(frozen=True, slots=True)
class Handler:
    """A resolved handler: the function, how it runs, and its import path (what a child imports)."""

    fn: Callable[..., Any]
    mode: Mode
    ref: str

    def __call__(self, args: TaskArgs, ctx: JobContext) -> Any:
        return self.fn(args, ctx)


def _check_options(task: Task[Any]) -> None:
    name = task.name
    if not isinstance(name, str) or not TASK_NAME_RE.match(name):
        raise TaskDefinitionError(
            str(name)[:100], "a task name is 1-100 characters of letters, digits, '_', '.' or '-'"
        )
    if not (isinstance(task.args_model, type) and issubclass(task.args_model, TaskArgs)):
        raise TaskDefinitionError(
            name, f"its args model {task.args_model!r} is not a taskq.TaskArgs subclass"
        )
    try:
        validate_queue_name(task.queue)
    except ValueError as exc:
        raise TaskDefinitionError(name, f"queue {task.queue!r}: {exc}") from None
    if not (isinstance(task.priority, int) and 0 <= task.priority <= MAX_PRIORITY):
        raise TaskDefinitionError(name, f"priority must be an integer from 0 to {MAX_PRIORITY}")
    if task.max_attempts is not None and not (
        isinstance(task.max_attempts, int) and 1 <= task.max_attempts <= MAX_ATTEMPTS_LIMIT
    ):
        raise TaskDefinitionError(name, f"max_attempts must be from 1 to {MAX_ATTEMPTS_LIMIT}")
    if task.timeout_seconds is not None and not 0 < task.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise TaskDefinitionError(name, f"timeout_seconds must be above 0 and at most {MAX_TIMEOUT_SECONDS}")
    if task.retry_backoff is not None:
        base, cap = task.retry_backoff
        if not 0 <= base <= cap <= 86_400:
            raise TaskDefinitionError(
                name, "retry_backoff is (base, max) seconds with 0 <= base <= max <= 86400"
            )
    if task.handler is not None and not (callable(task.handler) or isinstance(task.handler, str)):
        raise TaskDefinitionError(name, "handler must be a function or an import path 'module:function'")


def _import_handler(name: str, ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise TaskDefinitionError(name, f"handler {ref!r} is not an import path 'module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise TaskDefinitionError(name, f"handler module {module_name!r} failed to import: {exc!r}") from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise TaskDefinitionError(name, f"handler {ref!r}: {module_name} has no {attr}") from None
    return target


def _check_signature(name: str, fn: Callable[..., Any]) -> type[TaskArgs]:
    """The args model a handler takes: it must be ``(args: SomeTaskArgs, ctx)``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise TaskDefinitionError(name, "its handler has no inspectable signature") from None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required_rest = [
        p for p in params[len(positional) :] if p.default is p.empty and p.kind is p.KEYWORD_ONLY
    ]
    if len(positional) != 2 or required_rest:
        raise TaskDefinitionError(
            name, f"a handler takes (args, ctx); {fn.__qualname__} takes {inspect.signature(fn)}"
        )
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:
        raise TaskDefinitionError(name, f"its handler's annotations do not resolve: {exc!r}") from None
    args_type = hints.get(positional[0].name)
    if not (isinstance(args_type, type) and issubclass(args_type, TaskArgs)):
        raise TaskDefinitionError(
            name, f"the first parameter of {fn.__qualname__} must be annotated with a taskq.TaskArgs model"
        )
    return args_type


def import_handler(ref: str) -> tuple[Callable[..., Any], type[TaskArgs]]:
    """The function at ``"module:function"`` and its args model (an isolated task's child process
    imports its handler this way; the reference comes from the registry, never from a message)."""
    fn = _import_handler(ref, ref)
    if isinstance(fn, Task):
        fn = fn.handler
    return fn, _check_signature(ref, fn)


#: What ``Tasks.task`` decorates: ``(args, ctx)``, a coroutine function or a plain one.
HandlerFunction = Callable[[A, JobContext], Awaitable[object]] | Callable[[A, JobContext], object]


class Tasks:
    """A collection of declared tasks: what a module named in ``TASKQ_TASKS`` exposes."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task[Any]] = {}

    def __iter__(self) -> Iterator[Task[Any]]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: Task[A]) -> Task[A]:
        if task.name in self._tasks:
            raise TaskDefinitionError(task.name, "is declared twice")
        self._tasks[task.name] = task
        return task

    def declare(
        self,
        name: str,
        args_model: type[A],
        *,
        handler: str | Callable[..., Any] | None = None,
        description: str = "",
        queue: str = "default",
        priority: int = DEFAULT_PRIORITY,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        retry_backoff: tuple[float, float] | None = None,
        isolated: bool = False,
        debug: bool = False,
    ) -> Task[A]:
        """Declare a task's contract; ``handler`` is the import path the worker resolves."""
        task = Task(
            name, args_model, description, queue, priority, max_attempts, timeout_seconds,
            retry_backoff, isolated, debug, handler,
        )  # fmt: skip
        return self.add(task)

    def task(
        self,
        name: str,
        *,
        description: str | None = None,
        queue: str = "default",
        priority: int = DEFAULT_PRIORITY,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        retry_backoff: tuple[float, float] | None = None,
        isolated: bool = False,
    ) -> Callable[[HandlerFunction[A]], Task[A]]:
        """Declare a task with its handler: ``async def`` runs on the worker's event loop, ``def`` in
        its thread pool, and ``isolated=True`` (a ``def``) in a child process killed at the timeout.
        The args model is the handler's first parameter's annotation."""

        def decorate(fn: HandlerFunction[A]) -> Task[A]:
            Task(name, TaskArgs, queue=queue, handler=fn)  # the name and options are checked first
            args_model = typing.cast(type[A], _check_signature(name, fn))
            doc = description if description is not None else (inspect.getdoc(fn) or "").split("\n\n")[0]
            task = Task(
                name, args_model, doc, queue, priority, max_attempts, timeout_seconds, retry_backoff,
                isolated, False, fn,
            )  # fmt: skip
            task.resolve()  # an isolated async def, or a nested isolated function: refused here
            return self.add(task)

        return decorate


__all__ = [
    "TASK_NAME_PATTERN",
    "Handler",
    "Task",
    "TaskArgs",
    "TaskDefinitionError",
    "Tasks",
]
