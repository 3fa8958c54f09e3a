"""The chaos scenarios (docs/reliability.md numbers them after RELIABILITY.md): what each injects
under load, and what it asserts beyond the common promise (lost = 0, stuck = 0, duplicates within
the bound, nothing unexpected)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from docker.models.containers import Container

from e2e.chaos.checker import Execution, Report
from e2e.chaos.faults import Faults
from e2e.chaos.load import Mix
from e2e.chaos.redisfaults import Link, no_restarts, redis_full, start_linked


@dataclass(frozen=True, slots=True)
class Config:
    """One run's knobs: the same for every scenario of the run."""

    jobs: int
    duration: float  # seconds the load is spread over
    concurrency: int  # WORKER_CONCURRENCY of the workers (the duplicate bound's unit)
    lease: float  # LEASE_SECONDS
    grace: float  # WORKER_SHUTDOWN_GRACE


@dataclass(slots=True)
class Outcome:
    """What a scenario's own assertions look at, besides the checker's report."""

    report: Report
    faults: Faults
    server_errors: int
    refused_latency_max: float
    extras: dict[str, list[str]] = field(default_factory=dict)  # tag -> final status, error type
    executions: list[Execution] = field(default_factory=list)  # this scenario's, from the ledger
    unavailable: int = 0  # enqueues answered 503


Inject = Callable[[Faults, list[Container], Config], None]
Expect = Callable[[Outcome], list[str]]


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str  # "2", "control", "D" ...
    title: str
    inject: Inject
    expect: Expect
    workers: int = 3
    mix: Mix = field(default_factory=Mix)
    #: The common promise holds (lost = 0, stuck = 0); False only for the negative control.
    promise: bool = True
    #: Load as fast as the API takes it (the durability measure), not paced over the duration.
    unpaced: bool = False
    #: Its faults take the API or its Redis away for a while, so some requests may be refused. In the
    #: others a refusal means the harness is broken (a full run once filled Redis with the earlier
    #: scenarios' results, and two "passed" with 9 requests in 10 refused): the scenario fails.
    refusals: bool = False
    #: Special requests sent beside the load every few seconds (e2e.chaos.probes), checked after.
    probe: str | None = None


def _none(faults: Faults, replicas: list[Container], config: Config) -> None:
    return None


def _no_duplicates(outcome: Outcome) -> list[str]:
    extra = outcome.report.extra_executions
    return [f"{extra} duplicate executions, expected none"] if extra else []


def _graceful(outcome: Outcome) -> list[str]:
    bad = [code for code in outcome.faults.stop_exit_codes if code != 0]
    return [f"graceful stops exited {bad}, expected 0"] if bad else []


def _baseline(outcome: Outcome) -> list[str]:
    failures = _no_duplicates(outcome)
    if outcome.report.rerun:
        failures.append(f"{outcome.report.rerun} jobs ran later than planned with no fault")
    return failures


def _no_more(outcome: Outcome) -> list[str]:
    return []  # the probes' own verdicts are added by the runner


def _kills(faults: Faults, replicas: list[Container], config: Config) -> None:
    faults.every(2.0, faults.kill_worker)


def _kills_and_redis(faults: Faults, replicas: list[Container], config: Config) -> None:
    faults.every(2.0, faults.kill_worker)
    faults.every(config.duration / 2, faults.kill_redis, first=config.duration / 3)


def _api_never_hangs(outcome: Outcome) -> list[str]:
    failures = []
    if outcome.server_errors:
        failures.append(f"{outcome.server_errors} responses were 5xx other than 503")
    if outcome.report.unknown:
        failures.append(f"{outcome.report.unknown} requests got no answer during the Redis outage")
    return failures


def _redis_early(faults: Faults, replicas: list[Container], config: Config) -> None:
    # Unpaced, the load lasts however long the API takes: kill Redis early enough to be inside it.
    faults.every(10 * config.duration + 600, faults.kill_redis, first=8.0)


def _control(faults: Faults, replicas: list[Container], config: Config) -> None:
    once = 10 * config.duration + 600
    faults.every(once, faults.kill_redis_then_start(replicas[:3]), first=max(2.0, config.duration / 2))


def _sees_loss(outcome: Outcome) -> list[str]:
    if not outcome.report.lost:
        return ["the negative control saw no loss: the checker is broken"]
    return []


def _terms(faults: Faults, replicas: list[Container], config: Config) -> None:
    faults.every(4.0, faults.term_worker)


def _churn(faults: Faults, replicas: list[Container], config: Config) -> None:
    faults.churn(replicas, [1, 6, 1], hold=config.duration / 3)


def _cuts(faults: Faults, replicas: list[Container], config: Config) -> None:
    # Each cut blocks its thread for 2.5 leases, so cuts come about every 3.5 leases.
    faults.every(config.lease, faults.cut_worker(2.5 * config.lease), first=2.0)


def _producer_kills(faults: Faults, replicas: list[Container], config: Config) -> None:
    faults.every(max(5.0, config.duration / 4), faults.kill_producer)


def _no_dead(outcome: Outcome) -> list[str]:
    failures = _no_duplicates(outcome) + _graceful(outcome)
    if outcome.report.dead:
        failures.append(f"{len(outcome.report.dead)} jobs dead-lettered, expected none")
    return failures


def _linked_worked(faults: Faults, linked: Container) -> Callable[[list[Execution]], list[str]]:
    hostname = str(linked.attrs["Config"]["Hostname"])  # debug.record writes it as the worker

    def check(executions: list[Execution]) -> list[str]:
        failures = []
        completed = sum(1 for e in executions if e.event == "ok" and e.worker == hostname)
        faults.counts["linked_completed"] = completed
        # Where the duplicates came from: a stall's reclaimed jobs also finish on the linked worker.
        oks = Counter(e.tag for e in executions if e.event == "ok")
        linked_tags = {e.tag for e in executions if e.event == "ok" and e.worker == hostname}
        faults.counts["linked_duplicates"] = sum(1 for tag in linked_tags if oks[tag] > 1)
        if not completed:
            failures.append(f"the linked worker {hostname} completed no job")
        try:  # after a stall, its healthcheck passes again once a heartbeat got through
            faults.fleet.wait_healthy([linked], timeout=60)
        except AssertionError as exc:
            failures.append(f"the linked worker did not ride out the latency: {exc}")
        return failures

    return check


def _link_latency(faults: Faults, replicas: list[Container], config: Config) -> None:
    linked = start_linked(faults.fleet, replicas[0])
    faults.checks += [no_restarts([*faults.workers, linked]), _linked_worked(faults, linked)]
    link = Link(faults)
    faults.every(3.0, link.latency, first=1.0)
    # At least one stall inside the load: the first a third of the way in.
    faults.every(config.duration / 2, link.stall(config.lease), first=config.duration / 3)


def _link_faults_ran(outcome: Outcome) -> list[str]:
    counts = outcome.faults.counts
    if not counts["link_delay"] or not counts["link_stall"]:
        return [f"latency windows {counts['link_delay']}, stalls {counts['link_stall']}: expected both"]
    return []


def _redis_full(faults: Faults, replicas: list[Container], config: Config) -> None:
    faults.checks.append(no_restarts(list(faults.workers)))
    once = 10 * config.duration + 600
    full = redis_full(faults, hold=2 * config.lease, gap=config.duration / 3)
    faults.every(once, full, first=config.duration / 5)


def _full_refuses_and_loses_nothing(outcome: Outcome) -> list[str]:
    failures = _no_duplicates(outcome) + _api_never_hangs(outcome)
    if outcome.faults.counts["redis_full"] != 2:
        failures.append(f"Redis was made full {outcome.faults.counts['redis_full']} times, expected 2")
    if not outcome.unavailable:
        failures.append("no enqueue was refused with 503 while Redis was full")
    return failures


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario("1", "Baseline, no faults", _none, _baseline),
        Scenario("2", "SIGKILL a random worker every ~2 s", _kills, lambda o: []),
        Scenario(
            "3",
            "Worker SIGKILLs + Redis SIGKILL/restart (AOF)",
            _kills_and_redis,
            _api_never_hangs,
            refusals=True,
        ),
        Scenario(
            "control",
            "Negative control: persistence off, Redis SIGKILL",
            _control,
            _sees_loss,
            promise=False,
            refusals=True,
            # No worker until Redis dies, so what was accepted before is pending and must be lost
            # whatever the rate (with workers keeping up, runs lost only 0-2 jobs: too weak a test).
            workers=0,
        ),
        Scenario(
            "5",
            "SIGTERM a random worker every ~4 s (jobs up to 2.5 s < grace)",
            _terms,
            lambda o: _no_duplicates(o) + _graceful(o),
        ),
        Scenario(
            "6",
            "SIGTERM under jobs longer than the grace",
            _terms,
            _no_dead,
            mix=Mix(long=0.03, long_ms=(8000, 10000)),
        ),
        Scenario(
            "7",
            "Scale churn 1 -> 6 -> 1 workers",
            _churn,
            lambda o: _no_duplicates(o) + _graceful(o),
            workers=1,
        ),
        Scenario("8", "Worker cut from Redis for 2.5 x lease, healed", _cuts, lambda o: []),
        Scenario(
            "9", "Poison jobs (the handler kills its worker) in the load", _none, _no_more, probe="poison"
        ),
        Scenario("10", "Jobs past their hard timeout in the load", _none, _no_more, probe="timeout"),
        Scenario(
            "11",
            "Idempotency-Key sent 4 times at once, reused with another body",
            _none,
            _no_more,
            probe="idempotency",
        ),
        Scenario("P", "Producer SIGKILLed mid-request", _producer_kills, lambda o: [], refusals=True),
        Scenario(
            "D",
            "Redis SIGKILL under unpaced enqueue (durability)",
            _redis_early,
            lambda o: [],
            unpaced=True,
            refusals=True,
        ),
        Scenario(
            "L",
            "Latency on one worker's link to Redis, stalls past the lease",
            _link_latency,
            _link_faults_ran,
            workers=2,  # and the linked worker
        ),
        Scenario(
            "M",
            "Redis at maxmemory under load, twice",
            _redis_full,
            _full_refuses_and_loses_nothing,
            refusals=True,
        ),
    )
}

SHORT = ["2", "3", "5", "8"]
FULL = ["2", "3", "8", "5", "1", "7", "6", "9", "10", "11", "P", "L", "M", "D"]  # the most telling first
