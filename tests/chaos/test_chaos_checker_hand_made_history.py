"""The chaos checker, fed hand-made histories: it must see exactly the faults that are in them.

If it could not see a loss, a duplicate or an unexpected execution here, a green chaos run would
prove nothing."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.chaos.checker import MISSING, Execution, Outcome, Request, check, read_ledger


def ok(tag: str, job_id: str, attempt: int = 1) -> Execution:
    return Execution(tag=tag, job_id=job_id, attempt=attempt, event="ok")


def test_one_lost_one_duplicated_one_unexpected_are_reported_exactly() -> None:
    requests = [
        Request("t-ok", Outcome.ACCEPTED, "j-ok", 202),
        Request("t-lost", Outcome.ACCEPTED, "j-lost", 202),
        Request("t-dup", Outcome.ACCEPTED, "j-dup", 202),
        Request("t-refused", Outcome.REFUSED, None, 503),
    ]
    executions = [
        ok("t-ok", "j-ok"),
        ok("t-dup", "j-dup"),
        ok("t-dup", "j-dup", attempt=2),  # a worker cut off mid-job finished it anyway
        ok("t-never-sent", "j-ghost"),  # no request ever bore this tag: a phantom execution
    ]
    final = {"j-ok": "succeeded", "j-lost": MISSING, "j-dup": "succeeded"}

    report = check(requests, executions, final, duplicate_bound=1)

    assert report.lost == ["t-lost"]
    assert report.duplicated == {"t-dup": 2}
    assert report.unexpected == ["t-never-sent"]
    assert report.refused_ran == []
    assert report.stuck == []
    assert report.dead == []
    assert (report.accepted, report.refused, report.unknown) == (3, 1, 0)
    assert report.extra_executions == 1
    assert report.within_bound


def test_a_clean_history_reports_nothing() -> None:
    requests = [Request(f"t{i}", Outcome.ACCEPTED, f"j{i}", 202) for i in range(5)]
    executions = [ok(f"t{i}", f"j{i}") for i in range(5)]
    report = check(requests, executions, {f"j{i}": "succeeded" for i in range(5)})
    assert (report.lost, report.stuck, report.duplicated, report.unexpected) == ([], [], {}, [])
    assert report.rerun == 0


def test_stuck_dead_and_duplicates_beyond_the_bound_are_told_apart() -> None:
    requests = [
        Request("t-stuck", Outcome.ACCEPTED, "j-stuck", 202),
        Request("t-dead", Outcome.ACCEPTED, "j-dead", 202),
        Request("t-dup", Outcome.ACCEPTED, "j-dup", 202),
        # Recorded a success, yet Redis forgot the job: that is still a completion, not a loss.
        Request("t-gone", Outcome.ACCEPTED, "j-gone", 202),
    ]
    executions = [
        Execution("t-dead", "j-dead", 1, "fail"),
        *(ok("t-dup", "j-dup", attempt) for attempt in (1, 2, 3)),
        ok("t-gone", "j-gone"),
    ]
    final = {"j-stuck": "running", "j-dead": "failed", "j-dup": "succeeded", "j-gone": MISSING}
    report = check(requests, executions, final, duplicate_bound=1)
    assert report.stuck == ["t-stuck"]
    assert report.dead == ["t-dead"]
    assert report.lost == []
    assert report.duplicated == {"t-dup": 3}
    assert report.extra_executions == 2
    assert not report.within_bound


def test_unknown_requests_resolve_either_way_and_a_late_completion_is_a_rerun() -> None:
    requests = [
        Request("t-u1", Outcome.UNKNOWN),
        Request("t-u2", Outcome.UNKNOWN),
        Request("t-retry", Outcome.ACCEPTED, "j-retry", 202, fail_attempts=1),
        Request("t-reclaimed", Outcome.ACCEPTED, "j-rec", 202),
    ]
    executions = [
        Execution("t-u1", "j-u1", 1, "ok"),
        Execution("t-retry", "j-retry", 1, "fail"),
        ok("t-retry", "j-retry", attempt=2),  # planned: failed once on purpose
        ok("t-reclaimed", "j-rec", attempt=2),  # not planned: a fault made it run again
    ]
    report = check(requests, executions, {"j-retry": "succeeded", "j-rec": "succeeded"})
    assert report.unknown_executed == ["t-u1"]
    assert report.unknown_absent == ["t-u2"]
    assert report.unexpected == []
    assert report.rerun == 1


def test_a_refused_request_that_ran_is_told_apart_from_a_phantom() -> None:
    # A 503 whose write reached Redis before the connection died: refused, yet enqueued.
    requests = [Request("t-503", Outcome.REFUSED, None, 503)]
    report = check(requests, [ok("t-503", "j-503")], {})
    assert report.refused_ran == ["t-503"]
    assert report.unexpected == []
    assert (report.accepted, report.refused) == (0, 1)
    assert report.lost == []


def test_the_ledger_reader_keeps_one_scenario_and_counts_torn_lines(tmp_path: Path) -> None:
    line = {"tag": "s2-a", "job": "j1", "attempt": 1, "event": "ok", "worker": "w", "at": 1.5}
    other = {**line, "tag": "s3-a"}
    (tmp_path / "ledger-w-1.jsonl").write_text(json.dumps(line) + "\n" + json.dumps(other) + "\n")
    (tmp_path / "ledger-w-2.jsonl").write_text('{"tag": "s2-b", "jo')  # cut mid-line
    (tmp_path / "unrelated.txt").write_text("not a ledger\n")
    executions, torn = read_ledger(tmp_path, prefix="s2-")
    assert executions == [Execution("s2-a", "j1", 1, "ok", "w", 1.5)]
    assert torn == 1
