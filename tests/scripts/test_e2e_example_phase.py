"""scripts/e2e.sh's second phase (the examples/thumbnails images) with a stand-in `docker compose`:
it runs on the example's overlay with 2 workers, and its verdict counts as much as the first phase's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "scripts" / "e2e.sh"
GREEN = "==== 17 passed, 1 skipped in 212.4s ====\\n"

# Records each call; the example phase's runner (E2E_THUMBNAILS=1) prints $EXAMPLE_OUTPUT, the first
# phase's prints a green summary; `up` with the overlay exits $EXAMPLE_UP.
FAKE_COMPOSE = f"""#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case " $* " in
  *" run "*"SystemExit(3)"*) exit 3 ;;
  *" run "*"E2E_THUMBNAILS=1"*) printf '%b' "$EXAMPLE_OUTPUT"; exit "$EXAMPLE_STATUS" ;;
  *" run "*) printf '%b' "{GREEN}"; exit 0 ;;
  *"examples/thumbnails/compose.yaml up "*) exit "$EXAMPLE_UP" ;;
  *" port producer 8000 "*) echo 127.0.0.1:54321 ;;
  *) exit 0 ;;
esac
"""


def e2e(tmp_path: Path, output: str, status: int = 0, up: int = 0) -> tuple[int, str, list[str]]:
    fake = tmp_path / "compose"
    fake.write_text(FAKE_COMPOSE)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        **os.environ, "COMPOSE": str(fake), "E2E_TIMEOUT": "60", "E2E_DASHBOARD_PROBE": "true",
        "EXAMPLE_OUTPUT": output,
        "EXAMPLE_STATUS": str(status), "EXAMPLE_UP": str(up), "CALLS": str(calls), "TMPDIR": str(tmp_path),
    }  # fmt: skip
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr, calls.read_text().splitlines()


def test_the_example_phase_runs_its_scenario_on_the_overlay_with_two_workers(tmp_path: Path) -> None:
    code, log, calls = e2e(tmp_path, "==== 4 passed in 30.1s ====\\n")
    assert code == 0, log
    (up,) = [c for c in calls if "examples/thumbnails/compose.yaml up " in c]
    assert "--scale worker=2" in up
    (run,) = [c for c in calls if "E2E_THUMBNAILS=1" in c]
    assert run.endswith("pytest scenarios/test_05_user_tasks.py")
    # The images are built in one go, the example's on top of taskq's; teardown covers both phases.
    assert any(c.endswith("examples/thumbnails/compose.yaml --profile e2e build") for c in calls), calls
    assert "examples/thumbnails/compose.yaml --profile e2e down" in calls[-1]


def test_a_red_example_phase_fails_the_run_after_a_green_first_phase(tmp_path: Path) -> None:
    code, log, _ = e2e(tmp_path, "==== 1 failed, 3 passed in 30.1s ====\\n")
    assert code != 0, log
    assert "1 failed" in log


def test_an_example_phase_that_ran_nothing_fails_the_run(tmp_path: Path) -> None:
    code, log, _ = e2e(tmp_path, "==== 4 skipped in 0.3s ====\\n")
    assert code != 0, log


def test_an_example_stack_that_does_not_come_up_fails_the_run(tmp_path: Path) -> None:
    code, log, calls = e2e(tmp_path, "==== 4 passed in 30.1s ====\\n", up=1)
    assert code != 0, log
    assert not [c for c in calls if "E2E_THUMBNAILS=1" in c], "the scenario ran on a stack that is not up"
