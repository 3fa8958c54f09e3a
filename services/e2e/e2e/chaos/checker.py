"""The chaos checker: from a history of requests and a ledger of executions, what the faults did.

In the spirit of Jepsen's total-queue checker. The load generator records every request under a tag
of its own choosing (sent in the job's arguments) with its outcome: *accepted* (202, a job id: the
promise was made), *refused* (4xx or 503: nothing promised) or *unknown* (a timeout or a cut
connection: the job may or may not exist). The handler (``debug.record``) appends one fsynced line
per execution to a ledger no fault touches. After a full drain, ``check`` partitions everything:

- lost: accepted, never completed (no "ok" line), and Redis does not show it dead-lettered, cancelled
  or still pending. A job the queue forgot.
- stuck: accepted, and still queued, scheduled or running after the drain.
- dead: accepted, never completed, visibly failed or cancelled (a reason exists: not a silent loss).
- duplicated: completed more than once, with the count per tag; compared with the bound the faults
  allow (a worker killed or cut off mid-job may have finished jobs it could not ack).
- unexpected: executed, yet never sent at all (no request in the history bears its tag).
- refused yet run: executed although the API refused it. Not a broken promise (nothing was
  promised), but a client that retries a refusal makes a second job: a 503 during a Redis outage
  can come after the write reached Redis and before its reply did.
- unknowns resolved either way: executed (the request had in fact enqueued) or not.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Final states in which a job will not run again.
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
#: What ``final`` says for a job id Redis no longer knows (404).
MISSING = "missing"


class Outcome(str, enum.Enum):
    ACCEPTED = "accepted"  # 202 with a job id: the job must run
    REFUSED = "refused"  # 4xx or 503: nothing was promised, nothing may run
    UNKNOWN = "unknown"  # no answer (timeout, cut connection): it may or may not run


@dataclass(frozen=True, slots=True)
class Request:
    tag: str
    outcome: Outcome
    job_id: str | None = None
    status: int | None = None  # the HTTP status, when there was one
    #: Attempts the job was told to fail (debug.record's fail_attempts): a completion later than
    #: attempt fail_attempts + 1 means a fault made it run again.
    fail_attempts: int = 0


@dataclass(frozen=True, slots=True)
class Execution:
    tag: str
    job_id: str
    attempt: int
    event: str  # "ok" (completed) or "fail" (failed on purpose, to be retried)
    worker: str = ""
    at: float = 0.0


@dataclass(slots=True)
class Report:
    accepted: int = 0
    refused: int = 0
    unknown: int = 0
    executions: int = 0
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)  # tag -> completions (> 1)
    unexpected: list[str] = field(default_factory=list)
    refused_ran: list[str] = field(default_factory=list)
    unknown_executed: list[str] = field(default_factory=list)
    unknown_absent: list[str] = field(default_factory=list)
    #: Completed jobs whose completion came on a later attempt than planned (a reclaim, a hand-back).
    rerun: int = 0
    duplicate_bound: int = 0

    @property
    def extra_executions(self) -> int:
        """Completions beyond the first, summed over every duplicated job."""
        return sum(count - 1 for count in self.duplicated.values())

    @property
    def within_bound(self) -> bool:
        return self.extra_executions <= self.duplicate_bound

    def summary(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "unknown": self.unknown,
            "executions": self.executions,
            "lost": len(self.lost),
            "stuck": len(self.stuck),
            "dead": len(self.dead),
            "duplicated_jobs": len(self.duplicated),
            "extra_executions": self.extra_executions,
            "duplicate_bound": self.duplicate_bound,
            "unexpected": len(self.unexpected),
            "refused_ran": len(self.refused_ran),
            "unknown_executed": len(self.unknown_executed),
            "unknown_absent": len(self.unknown_absent),
            "rerun": self.rerun,
        }


def check(
    requests: Iterable[Request],
    executions: Iterable[Execution],
    final: Mapping[str, str],
    *,
    duplicate_bound: int = 0,
) -> Report:
    """Partition the history. ``final`` maps each accepted job id to its status after the drain
    (``MISSING`` when Redis has no such job)."""
    report = Report(duplicate_bound=duplicate_bound)
    by_tag: dict[str, Request] = {}
    for request in requests:
        # A tag is sent once; if a client did resend one, the accepted answer is the one that binds.
        if request.tag not in by_tag or request.outcome is Outcome.ACCEPTED:
            by_tag[request.tag] = request
    completions: Counter[str] = Counter()
    first_ok_attempt: dict[str, int] = {}
    seen: set[str] = set()
    for execution in executions:
        report.executions += 1
        seen.add(execution.tag)
        if execution.event == "ok":
            completions[execution.tag] += 1
            previous = first_ok_attempt.get(execution.tag, execution.attempt)
            first_ok_attempt[execution.tag] = min(previous, execution.attempt)

    for tag, request in sorted(by_tag.items()):
        if request.outcome is Outcome.REFUSED:
            report.refused += 1
            continue
        if request.outcome is Outcome.UNKNOWN:
            report.unknown += 1
            (report.unknown_executed if tag in seen else report.unknown_absent).append(tag)
            continue
        report.accepted += 1
        status = final.get(request.job_id or "", MISSING)
        if status not in TERMINAL and status != MISSING:
            report.stuck.append(tag)
        elif completions[tag] == 0:
            (report.dead if status in {"failed", "cancelled"} else report.lost).append(tag)
        elif first_ok_attempt[tag] > request.fail_attempts + 1:
            report.rerun += 1
    for tag, count in sorted(completions.items()):
        request_ = by_tag.get(tag)
        if count > 1 and request_ is not None and request_.outcome is not Outcome.REFUSED:
            report.duplicated[tag] = count
    report.unexpected = sorted(seen - by_tag.keys())
    report.refused_ran = sorted(t for t in seen & by_tag.keys() if by_tag[t].outcome is Outcome.REFUSED)
    return report


def read_ledger(directory: Path, *, prefix: str = "") -> tuple[list[Execution], int]:
    """Every execution in the ledger files of ``directory`` whose tag starts with ``prefix``, and the
    number of lines that could not be read (a torn last line; expected to be 0, since each line is one
    write(2) followed by fsync)."""
    executions: list[Execution] = []
    torn = 0
    for path in sorted(directory.glob("ledger-*.jsonl")):
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                item = json.loads(raw)
                execution = Execution(
                    tag=str(item["tag"]),
                    job_id=str(item["job"]),
                    attempt=int(item["attempt"]),
                    event=str(item["event"]),
                    worker=str(item.get("worker", "")),
                    at=float(item.get("at", 0.0)),
                )
            except (ValueError, KeyError, TypeError):
                torn += 1
                continue
            if execution.tag.startswith(prefix):
                executions.append(execution)
    return executions, torn


__all__ = ["MISSING", "TERMINAL", "Execution", "Outcome", "Report", "Request", "check", "read_ledger"]
