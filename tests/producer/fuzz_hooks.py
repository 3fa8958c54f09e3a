"""Schemathesis hooks for tests/producer/fuzz.py (loaded through SCHEMATHESIS_HOOKS).

One failure is excused, narrowly: "schema-valid request rejected" (ST202, positive_data_acceptance)
when the rejection is a 422 whose problem type is ``idempotency-conflict``. The fuzzer reuses header
values across requests with different bodies, and the contract's answer to the same Idempotency-Key
with another body is exactly that 422 (tests/producer/test_idempotency.py covers the rules). The
conflict explains the rejection and nothing else: every other failure on the same response (a body
that breaks the documented 422 schema, a missing header, a wrong content type) is kept.
"""

from __future__ import annotations

from typing import Any

import schemathesis

CONFLICT = "urn:taskq:problem:idempotency-conflict"
#: Schemathesis's stable code for "Schema-valid request rejected" (never renumbered, per its docs).
REJECTED_POSITIVE_DATA = "ST202"


def explained_by_conflict(failure: Any, response: Any) -> bool:
    if getattr(failure, "code", None) != REJECTED_POSITIVE_DATA:
        return False
    if response is None or response.status_code != 422:
        return False
    try:
        problem = response.json()
    except ValueError:
        return False
    return isinstance(problem, dict) and problem.get("type") == CONFLICT


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    return not explained_by_conflict(failure, response)
