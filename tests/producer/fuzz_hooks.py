"""Schemathesis hooks for tests/producer/fuzz.py (loaded through SCHEMATHESIS_HOOKS).

One failure is excused, narrowly: "schema-valid request rejected" (ST202, positive_data_acceptance)
when the rejection is a 422 whose problem type is ``idempotency-conflict``. The fuzzer reuses header
values across requests with different bodies, and the contract's answer to the same Idempotency-Key
with another body is exactly that 422 (tests/producer/test_idempotency.py covers the rules). The
conflict explains the rejection and nothing else: every other failure on the same response (a body
that breaks the documented 422 schema, a missing header, a wrong content type) is kept.

A second, as narrow: the same ST202 when every error of the 422 is ``run_at_too_far``. The contract
holds `run_at` to 365 days ahead (like `delay_seconds`), a rule relative to now that JSON Schema
cannot state, so schema-valid data can break it; its own error type says that is the only reason.

A third: the same ST202 when the 422 is ``purge-not-confirmed``. POST /queues/{queue}/purge needs
``{"confirm": "<queue>"}`` with the path's own name, a rule across the path and the body that JSON
Schema cannot state (tests/producer/test_queue_controls_api.py covers it).
"""

from __future__ import annotations

from typing import Any

import schemathesis

CONFLICT = "urn:taskq:problem:idempotency-conflict"
PURGE_NOT_CONFIRMED = "urn:taskq:problem:purge-not-confirmed"
#: producer.schemas.RUN_AT_TOO_FAR (not imported: schemathesis loads this file on its own).
RUN_AT_TOO_FAR = "run_at_too_far"
#: Schemathesis's stable code for "Schema-valid request rejected" (never renumbered, per its docs).
REJECTED_POSITIVE_DATA = "ST202"


def _rejection(failure: Any, response: Any) -> dict[str, Any] | None:
    """The problem body of a schema-valid request rejected with a 422, else None."""
    if getattr(failure, "code", None) != REJECTED_POSITIVE_DATA:
        return None
    if response is None or response.status_code != 422:
        return None
    try:
        problem = response.json()
    except ValueError:
        return None
    return problem if isinstance(problem, dict) else None


def explained_by_conflict(failure: Any, response: Any) -> bool:
    problem = _rejection(failure, response)
    return problem is not None and problem.get("type") == CONFLICT


def explained_by_purge_confirmation(failure: Any, response: Any) -> bool:
    problem = _rejection(failure, response)
    return problem is not None and problem.get("type") == PURGE_NOT_CONFIRMED


def explained_by_time_window(failure: Any, response: Any) -> bool:
    problem = _rejection(failure, response)
    errors = problem.get("errors") if problem is not None else None
    if not isinstance(errors, list) or not errors:
        return False
    return all(isinstance(e, dict) and e.get("type") == RUN_AT_TOO_FAR for e in errors)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    return not (
        explained_by_conflict(failure, response)
        or explained_by_time_window(failure, response)
        or explained_by_purge_confirmation(failure, response)
    )
