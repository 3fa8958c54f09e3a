"""scripts/e2e.sh end to end with a stand-in for `docker compose` (no Docker here): the run's status
is pytest's verdict and a compose that hides exit codes is caught, whatever the exit codes claim."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "e2e.sh"

# Answers like `docker compose` would: the probe container exits with $PROBE_STATUS, the e2e runner
# prints $RUN_OUTPUT and exits with $RUN_STATUS; build/up/down/ps/logs succeed silently.
FAKE_COMPOSE = """#!/usr/bin/env bash
case " $* " in
  *" run "*"SystemExit(3)"*) exit "$PROBE_STATUS" ;;
  *" run "*) printf '%b' "$RUN_OUTPUT"; exit "$RUN_STATUS" ;;
  *" port producer 8000 "*) echo 127.0.0.1:54321 ;;
  *) exit 0 ;;
esac
"""


def e2e(
    tmp_path: Path, output: str, status: int = 0, probe: int = 3, dashboard: str = "true"
) -> tuple[int, str]:
    fake = tmp_path / "compose"
    fake.write_text(FAKE_COMPOSE)
    fake.chmod(0o755)
    env = {
        **os.environ, "COMPOSE": str(fake), "E2E_TIMEOUT": "60", "E2E_DASHBOARD_PROBE": dashboard,
        "RUN_OUTPUT": output,
        "RUN_STATUS": str(status), "PROBE_STATUS": str(probe), "TMPDIR": str(tmp_path),
    }  # fmt: skip
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_a_green_run_passes(tmp_path: Path) -> None:
    code, log = e2e(tmp_path, "==== 17 passed, 1 skipped in 212.4s ====\\n")
    assert code == 0, log
    assert not list(tmp_path.glob("taskq-e2e-*.log"))  # the captured output is cleaned up


@pytest.mark.parametrize(
    ("output", "status", "why"),
    [
        ("==== no tests ran in 0.01s ====\\n", 0, "zero tests"),
        ("==== 2 failed, 15 passed in 99.0s ====\\n", 0, "2 failed"),  # exit code lied
        ("", 0, "no pytest summary"),  # output lost
        ("==== 2 failed, 15 passed in 99.0s ====\\n", 1, "2 failed"),
    ],
)
def test_a_red_or_empty_run_fails_whatever_the_exit_code(
    tmp_path: Path, output: str, status: int, why: str
) -> None:
    code, log = e2e(tmp_path, output, status)
    assert code != 0, log
    assert why in log


def test_a_compose_that_hides_a_failing_container_is_caught(tmp_path: Path) -> None:
    code, log = e2e(tmp_path, "==== 17 passed in 1.0s ====\\n", probe=0)
    assert code == 1, log
    assert "cannot be trusted" in log


def test_a_dashboard_that_fails_through_the_published_port_fails_the_run(tmp_path: Path) -> None:
    """The host-side probe gets the address `compose port` published, and its verdict counts."""
    seen = tmp_path / "probed"
    stub = tmp_path / "probe"
    stub.write_text(f'#!/usr/bin/env bash\necho "$1" > {seen}\nexit 1\n')
    stub.chmod(0o755)
    code, log = e2e(tmp_path, "==== 17 passed, 1 skipped in 212.4s ====\\n", dashboard=str(stub))
    assert code != 0, log
    assert seen.read_text().strip() == "http://127.0.0.1:54321"
