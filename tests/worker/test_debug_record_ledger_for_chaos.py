"""debug.record, the chaos load's task: a real worker writes one ledger line per execution, before its
ack, in the directory DEBUG_LEDGER_DIR names, and the chaos checker reads those lines back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from e2e.chaos.checker import Outcome, Request, check, read_ledger
from taskq import JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.testing import RunningWorker, wait_status


async def test_each_execution_is_in_the_ledger_and_the_checker_sees_no_loss(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Callable[..., Awaitable[RunningWorker]],
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    settings = make_settings(debug_ledger_dir=ledger)
    client = client_for(settings)
    plain = (await client.enqueue("debug.record", {"tag": "c-plain", "sleep_ms": 5})).id
    flaky = (await client.enqueue("debug.record", {"tag": "c-flaky", "fail_attempts": 1}, max_attempts=3)).id
    await start_worker(settings)
    for job_id in (plain, flaky):
        await wait_status(client, job_id, {JobStatus.SUCCEEDED})

    executions, torn = read_ledger(ledger, prefix="c-")
    assert torn == 0
    assert sorted((e.tag, e.attempt, e.event, e.job_id) for e in executions) == [
        ("c-flaky", 1, "fail", flaky),
        ("c-flaky", 2, "ok", flaky),
        ("c-plain", 1, "ok", plain),
    ]
    requests = [
        Request("c-plain", Outcome.ACCEPTED, plain, 202),
        Request("c-flaky", Outcome.ACCEPTED, flaky, 202, fail_attempts=1),
    ]
    report = check(requests, executions, {plain: "succeeded", flaky: "succeeded"})
    assert (report.lost, report.duplicated, report.unexpected, report.rerun) == ([], {}, [], 0)
