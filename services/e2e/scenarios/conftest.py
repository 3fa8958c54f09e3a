"""Fixtures of the e2e suite: the API, the mailbox, the containers, and a clean, idle queue per test."""

from __future__ import annotations

import pytest

from e2e.harness import Api, Fleet, Sink, env, wait_for

#: Figures the scenarios measured, printed at the end of the run (and so in the CI log).
MEASURED: list[str] = []


@pytest.fixture(scope="session")
def api() -> Api:
    client = Api(env("E2E_API_URL", "http://producer:8000"), env("API_TOKEN", "") or None)
    wait_for(lambda: client.request("GET", "/readyz").status_code == 200, timeout=60, what="producer ready")
    return client


@pytest.fixture(scope="session")
def sink() -> Sink:
    return Sink(env("E2E_SINK_URL", "http://mailpit:8025"))


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    return Fleet()


@pytest.fixture(autouse=True)
def idle_stack(api: Api, fleet: Fleet) -> None:
    """Each scenario starts from a healthy stack (Redis up, every replica running) with an empty queue,
    whatever the previous one stopped or killed."""
    redis = fleet.one("redis")
    if not fleet.state(redis)["Running"]:
        redis.start()
    fleet.wait_healthy([redis])
    fleet.set_workers(len(fleet.containers("worker")))
    wait_for(api.idle, timeout=60, what="the default queue to drain")


@pytest.fixture
def measured() -> list[str]:
    return MEASURED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASURED:
        terminalreporter.section("measured")
        for line in MEASURED:
            terminalreporter.write_line(line)
