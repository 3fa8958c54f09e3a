"""Run one chaos scenario end to end: load + faults, full drain, checker, verdict."""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from e2e.chaos.checker import Execution, check, read_ledger
from e2e.chaos.faults import Faults
from e2e.chaos.load import Load, final_statuses
from e2e.chaos.probes import POISON_ATTEMPTS, Probes
from e2e.chaos.redisfaults import remove_linked
from e2e.chaos.scenarios import Config, Outcome, Scenario
from e2e.harness import Api, Fleet, wait_for

log = logging.getLogger("chaos")


@dataclass(slots=True)
class Result:
    scenario: Scenario
    outcome: Outcome
    jobs: int
    load_seconds: float
    recover_seconds: float
    torn_lines: int
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def row(self, commit: str) -> str:
        r = self.outcome.report
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.outcome.faults.counts.items())) or "none"
        rate = r.accepted / self.load_seconds if self.load_seconds else 0.0
        verdict = "pass" if self.passed else "FAIL: " + "; ".join(self.failures)
        return (
            f"| {self.scenario.key} | {self.scenario.title} | {self.jobs} ({r.accepted} accepted, "
            f"{r.refused} refused; {rate:.0f}/s) | {faults} | {len(r.lost)} | "
            f"{r.extra_executions} ({len(r.duplicated)} jobs; bound {r.duplicate_bound}) | {len(r.stuck)} | "
            f"{r.unknown} ({len(r.unknown_executed)} ran; {len(r.refused_ran)} refused ran) | "
            f"{self.recover_seconds:.1f} | {commit} "
            f"| {verdict} |"
        )


HEADER = (
    "| # | scenario | jobs | faults injected | lost | duplicated (bound) | stuck | unknowns | "
    "recover s | commit | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def _final(api: Api, load: Load, executions: list[Execution]) -> dict[str, str]:
    """Each accepted job's status after the drain, read with as few requests as are needed.

    With the queue idle (nothing pending, scheduled or running), no job is stuck, so a job with a
    recorded completion is finished: only the others need reading (to tell lost from dead-lettered).
    Otherwise every job is read. 20,000 reads took minutes on a loaded 2-core host."""
    accepted = load.accepted_ids()
    if not api.idle():
        return final_statuses(api, accepted)
    completed = {e.job_id for e in executions if e.event == "ok"}
    final = {job_id: "succeeded" for job_id in accepted if job_id in completed}
    final.update(final_statuses(api, [job_id for job_id in accepted if job_id not in completed]))
    return final


def run_scenario(
    scenario: Scenario, config: Config, *, api: Api, fleet: Fleet, ledger: Path, seed: int, drain: float
) -> Result:
    remove_linked(fleet)  # a scenario L cut short must not leave its extra worker to the next one
    replicas = fleet.containers("worker")
    workers = fleet.set_workers(scenario.workers)
    wait_for(api.idle, timeout=120, what="the queue to be idle before the scenario")
    prefix = f"s{scenario.key}-{uuid.uuid4().hex[:8]}"
    load = Load(
        api,
        prefix,
        config.jobs,
        0.0 if scenario.unpaced else config.duration,
        mix=scenario.mix,
        seed=seed,
    )
    faults = Faults(fleet, list(workers), random.Random(seed))
    log.info("scenario %s (%s): %d jobs, prefix %s", scenario.key, scenario.title, config.jobs, prefix)
    scenario.inject(faults, replicas, config)
    probes = Probes(api, load, scenario.probe) if scenario.probe else None
    if probes is not None:
        faults.every(probes.interval(config.duration), probes.send, first=1.0)
    load.run()
    load_ended = time.monotonic()
    faults.stop()
    # Recovery: from the last fault healed (or the end of the load, if later: jobs sent after the last
    # fault are not its backlog) to every accepted job terminal, or the drain deadline.
    healed = max(load_ended, faults.healed_at or load_ended)
    wait_for(lambda: api.request("GET", "/queues").status_code == 200, timeout=120, what="the API back")
    try:
        wait_for(api.idle, timeout=drain, what="the queue to drain", interval=0.5)
    except AssertionError as exc:
        log.warning("%s", exc)  # the checker reports what is left as stuck
    recover = time.monotonic() - healed
    executions, torn = read_ledger(ledger, prefix=prefix + "-")
    final = _final(api, load, executions)
    counts = faults.counts
    per_worker = config.concurrency
    # A link stalled past the lease is a network cut that heals by itself; plain latency allows none.
    bound = per_worker * (counts["worker_sigkill"] + counts["network_cut"] + counts["link_stall"])
    bound += per_worker * len(replicas) * counts["redis_sigkill"]
    if probes is not None and probes.kind == "poison":
        # Each poison attempt kills its worker process like a SIGKILL, taking its other jobs along.
        bound += per_worker * POISON_ATTEMPTS * probes.counts["sent"]
        counts["poison_jobs"] = probes.counts["sent"]
    probe_problems = probes.verify() if probes is not None else []
    report = check(load.history, executions, final, duplicate_bound=bound)
    outcome = Outcome(
        report=report,
        faults=faults,
        server_errors=load.server_errors,
        refused_latency_max=max(load.refused_latency, default=0.0),
        executions=executions,
        unavailable=sum(1 for r in load.history if r.status == 503),
    )
    failures: list[str] = []
    if scenario.promise:
        if report.lost:
            failures.append(f"lost {len(report.lost)}: {report.lost[:5]}")
        if report.stuck:
            failures.append(f"stuck {len(report.stuck)}: {report.stuck[:5]}")
        if report.dead:
            failures.append(f"dead-lettered {len(report.dead)}: {report.dead[:5]}")
    if report.refused and not scenario.refusals:
        failures.append(f"{report.refused} requests refused with no fault on the API's path")
    if not report.within_bound:
        failures.append(f"{report.extra_executions} duplicates exceed the bound {bound}")
    if report.unexpected:
        failures.append(f"unexpected executions {len(report.unexpected)}: {report.unexpected[:5]}")
    if report.refused_ran:  # reported, not failed: a refusal promises nothing (see checker.py)
        log.warning("refused yet run: %s", report.refused_ran[:5])
    if torn:
        failures.append(f"{torn} torn ledger lines")
    for fault_check in faults.checks:
        failures.extend(fault_check(executions))
    remove_linked(fleet)
    failures.extend(scenario.expect(outcome))
    failures.extend(probe_problems)
    return Result(scenario, outcome, config.jobs, load.elapsed, recover, torn, failures)
