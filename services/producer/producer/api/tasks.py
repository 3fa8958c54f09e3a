"""/tasks: the task contract (names, JSON Schemas of their args, options), so clients know what to send
and what a job gets when the request omits an option."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from producer.deps import RegistryDep, StrictJSONRoute
from producer.openapi import problems
from producer.problems import ProblemError
from producer.schemas import TaskView
from taskq import Task, UnknownTask
from taskq.tasks import TASK_NAME_PATTERN

router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=StrictJSONRoute)


def view(spec: Task[Any]) -> TaskView:
    # The options as the task states them (core's Task.options), so the view cannot drift from them.
    return TaskView(
        name=spec.name, description=spec.description, args_schema=spec.json_schema(), **spec.options()
    )


@router.get("", response_model=list[TaskView], summary="Registered tasks", responses=problems(401, 429))
async def list_tasks(registry: RegistryDep) -> list[TaskView]:
    return [view(spec) for spec in registry]


@router.get("/{name}", response_model=TaskView, summary="One task", responses=problems(401, 404, 422, 429))
async def get_task(
    name: Annotated[str, Path(pattern=TASK_NAME_PATTERN, description="Task name")], registry: RegistryDep
) -> TaskView:
    try:
        return view(registry.get(name))
    except UnknownTask:
        raise ProblemError(404, f"no task named {name!r}", slug="task-not-found") from None
