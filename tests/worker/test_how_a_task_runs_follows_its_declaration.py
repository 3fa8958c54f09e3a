"""How a task runs is decided by its declaration once: ``isolated=True`` means a killable child process,
otherwise an ``async def`` handler runs on the event loop and a plain ``def`` in the thread pool. (An
earlier contract carried an ``isolated`` flag that nothing read; now the flag is what decides.)"""

from __future__ import annotations

from taskq import TaskRegistry
from worker.handlers import handlers_for


def test_only_the_isolated_tasks_run_in_a_child_process() -> None:
    registry = TaskRegistry.load(debug=True)
    handlers = handlers_for(registry)
    in_process = {name for name, handler in handlers.items() if handler.mode == "process"}
    assert in_process == {task.name for task in registry if task.isolated} == {"debug.spin"}


def test_async_handlers_run_on_the_loop_and_plain_ones_in_threads() -> None:
    handlers = handlers_for(TaskRegistry.load(debug=True))
    assert handlers["generate_report"].mode == "async"
    assert handlers["send_email"].mode == "thread"
