"""Read pytest's own verdict from the e2e runner's output, so `make e2e` never trusts an exit code alone.

    python3 scripts/e2e_summary.py <captured output of the e2e container>

Exits 0 only if the output ends with a pytest summary of at least one passed test and no failure nor
error. A run that collected nothing, was cut short before its summary, or whose summary was lost
(a wrapper that swallowed it, an exit code that lied) fails: the check fails closed.
Standard library only: scripts/e2e.sh runs it with the host's python3.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: pytest's last line: "=== 8 passed, 1 skipped, 2 warnings in 12.34s (0:00:12) ===", or bare under -q.
_SUMMARY = re.compile(r"^=*\s*(?P<counts>(?:\d+ \w+(?:, )?)+|no tests ran) in [\d.]+s\b")
_COUNT = re.compile(r"(\d+) (\w+)")
_PLURAL = {"errors": "error", "warnings": "warning"}


@dataclass(frozen=True, slots=True)
class Summary:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0


def parse(output: str) -> Summary | None:
    """The counts of the last pytest summary line in ``output``, or None if there is none."""
    found: Summary | None = None
    for raw in output.splitlines():
        line = _ANSI.sub("", raw).strip()
        match = _SUMMARY.match(line)
        if match is None:
            continue
        counts: dict[str, int] = {}
        for number, word in _COUNT.findall(match["counts"]):
            key = _PLURAL.get(word, word)
            counts[key] = counts.get(key, 0) + int(number)
        found = Summary(
            passed=counts.get("passed", 0), failed=counts.get("failed", 0), errors=counts.get("error", 0),
            skipped=counts.get("skipped", 0), xfailed=counts.get("xfailed", 0),
            xpassed=counts.get("xpassed", 0),
        )  # fmt: skip
    return found


def verdict(output: str) -> str | None:
    """None if the run proves itself green; else why it does not."""
    summary = parse(output)
    if summary is None:
        return "no pytest summary in the e2e output: nothing proves that a test ran"
    if summary.failed or summary.errors:
        return f"pytest reports {summary.failed} failed and {summary.errors} errors"
    if summary.passed == 0:
        return "pytest ran zero tests: an e2e run must pass at least one"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: e2e_summary.py <e2e output file>", file=sys.stderr)
        return 2
    problem = verdict(Path(argv[1]).read_text(errors="replace"))
    summary = parse(Path(argv[1]).read_text(errors="replace"))
    if problem is not None:
        print(f"e2e: {problem}", file=sys.stderr)
        return 1
    print(f"e2e: pytest summary checked: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
