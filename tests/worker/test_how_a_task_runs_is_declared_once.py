"""How a task runs (event loop, thread, killable child process) is declared once, by its handler in the
worker; the contract holds names and argument shapes only. It used to also carry an ``isolated`` flag
that nothing read, and that said False for ``debug.spin``, which runs in a child process."""

from __future__ import annotations

import dataclasses

from taskq import TaskRegistry, TaskSpec
from worker.handlers import PROCESS_FUNCTIONS, Mode, handlers_for


def test_the_contract_does_not_say_how_a_task_runs() -> None:
    fields = {f.name for f in dataclasses.fields(TaskSpec)}
    assert not fields & {"isolated", "mode", "process"}


def test_the_handler_table_says_which_tasks_run_in_a_child_process() -> None:
    handlers = handlers_for(TaskRegistry.build(debug=True))
    in_process = {name for name, handler in handlers.items() if handler.mode is Mode.PROCESS}
    assert in_process == {"debug.spin"}
    assert set(PROCESS_FUNCTIONS) == in_process  # what a child may run is exactly that set
