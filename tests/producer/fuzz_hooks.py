"""Schemathesis hooks for tests/producer/fuzz.py (loaded through SCHEMATHESIS_HOOKS).

One answer is excused, narrowly: a 422 whose problem type is ``idempotency-conflict``. The fuzzer
reuses header values across requests with different bodies, and the contract's answer to the same
Idempotency-Key with another body is exactly that 422 (tests/producer/test_idempotency.py covers the
rules). Every other failure is kept.
"""

from __future__ import annotations

from typing import Any

import schemathesis

CONFLICT = "urn:taskq:problem:idempotency-conflict"


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if response is None or response.status_code != 422:
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    return not (isinstance(problem, dict) and problem.get("type") == CONFLICT)
