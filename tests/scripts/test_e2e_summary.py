"""scripts/e2e_summary.py: `make e2e` passes only on a pytest summary of >= 1 passed, 0 failed, 0 errors.
(Docker is not needed: the parser is what decides, and these are the outputs it must judge.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "e2e_summary.py"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("e2e_summary", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2e_summary"] = module  # dataclasses resolve the module by name
    spec.loader.exec_module(module)
    return module


summary = _load()

GREEN = """\
scenarios/test_01_jobs.py ......                                          [ 40%]
scenarios/test_02_faults.py ......                                        [ 80%]
=========================== short test summary info ============================
SKIPPED [1] scenarios/test_03_security.py:12: no TLS here
============ 17 passed, 1 skipped, 2 warnings in 212.43s (0:03:32) =============
"""


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("==== 3 failed, 14 passed in 99.1s ====\n", "3 failed"),
        ("==== 16 passed, 1 error in 99.1s ====\n", "1 errors"),
        ("==== 16 passed, 2 errors in 99.1s ====\n", "2 errors"),
        ("============================ no tests ran in 0.02s =============================\n", "zero tests"),
        ("===== 18 deselected in 0.10s =====\n", "zero tests"),
        ("==== 18 skipped in 0.3s ====\n", "zero tests"),
        ("", "no pytest summary"),
        ("scenarios/test_01_jobs.py ....\nKilled\n", "no pytest summary"),  # cut short: no summary
        ("ERROR: file or directory not found: scenarios/nope\n", "no pytest summary"),
    ],
)
def test_red_or_empty_runs_fail(output: str, why: str) -> None:
    problem = summary.verdict(output)
    assert problem is not None
    assert why in problem


@pytest.mark.parametrize(
    "output",
    [
        GREEN,
        "17 passed in 3.01s\n",  # pytest -q
        # colours and CRLF, as `compose run` with a TTY delivers them
        "\x1b[32m==== \x1b[32m\x1b[1m17 passed\x1b[0m, \x1b[33m1 xfailed\x1b[0m"
        "\x1b[32m in 9.00s\x1b[0m ====\r\n",
    ],
)
def test_green_runs_pass(output: str) -> None:
    assert summary.verdict(output) is None


def test_the_last_summary_wins() -> None:
    # A scenario that prints a summary-like line must not hide the real, red one after it.
    assert summary.verdict("5 passed in 1.00s\n==== 1 failed, 4 passed in 2.0s ====\n") is not None
    assert summary.parse(GREEN) == summary.Summary(passed=17, skipped=1)


def test_the_command_line_exit_codes(tmp_path: Path) -> None:
    def run(text: str) -> int:
        path = tmp_path / "out.txt"
        path.write_text(text)
        return subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True).returncode

    assert run(GREEN) == 0
    assert run("==== no tests ran in 0.01s ====\n") == 1
    assert run("==== 1 failed in 0.5s ====\n") == 1
