"""The fuzzer's one excuse (tests/producer/fuzz_hooks.py) drops only what an idempotency conflict
explains: a schema-valid request rejected with the conflict's 422, never a schema failure."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemathesis.core.failures import MalformedJson, ServerError
from schemathesis.openapi.checks import JsonSchemaError, MissingHeaders, RejectedPositiveData


def _load_hooks() -> Any:
    """The hooks file as schemathesis loads it (a module on SCHEMATHESIS_HOOKS's path, not a package)."""
    spec = importlib.util.spec_from_file_location("fuzz_hooks", Path(__file__).with_name("fuzz_hooks.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOKS = _load_hooks()
CONFLICT: str = HOOKS.CONFLICT


@dataclass
class Answer:
    """What the hook reads of a response: its status and its JSON body."""

    status_code: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


CONFLICT_422 = Answer(422, json.dumps({"type": CONFLICT, "status": 422, "title": "t", "detail": "d"}))
OTHER_422 = Answer(422, json.dumps({"type": "urn:taskq:problem:validation", "status": 422}))


def rejected() -> RejectedPositiveData:
    return RejectedPositiveData(
        operation="POST /jobs", message="m", status_code=422, allowed_statuses=["2xx"]
    )


def kept(failure: Any, response: Answer) -> bool:
    return bool(HOOKS.filter_failure(None, failure, None, response))


def test_the_conflict_excuses_only_the_rejection_it_caused() -> None:
    assert not kept(rejected(), CONFLICT_422)


def _validation(*types: str) -> Answer:
    errors = [{"loc": ["body", "run_at"], "msg": "m", "type": t} for t in types]
    return Answer(422, json.dumps({"type": "urn:taskq:problem:validation", "status": 422, "errors": errors}))


def test_a_run_at_past_a_year_excuses_only_itself() -> None:
    """The year bound is the contract's (JSON Schema cannot say it); any other error alongside is kept."""
    assert not kept(rejected(), _validation(HOOKS.RUN_AT_TOO_FAR))
    assert kept(rejected(), _validation(HOOKS.RUN_AT_TOO_FAR, "missing"))
    assert kept(rejected(), _validation())
    assert kept(ServerError(operation="POST /jobs", status_code=500), _validation(HOOKS.RUN_AT_TOO_FAR))


def test_other_rejections_are_kept() -> None:
    assert kept(rejected(), OTHER_422)
    assert kept(rejected(), Answer(422, "not json"))
    assert kept(rejected(), Answer(400, CONFLICT_422.body))


def test_schema_and_protocol_failures_on_a_conflict_are_kept() -> None:
    assert kept(
        JsonSchemaError(operation="POST /jobs", exc=_validation_error(), root_schema={}), CONFLICT_422
    )
    assert kept(
        MissingHeaders(operation="POST /jobs", message="m", missing_headers=["Retry-After"]), CONFLICT_422
    )
    assert kept(MalformedJson(operation="POST /jobs", message="m", validation_message="v", document="d",
                              position=0, lineno=1, colno=1), CONFLICT_422)  # fmt: skip
    assert kept(ServerError(operation="POST /jobs", status_code=500), CONFLICT_422)


def _validation_error() -> Any:
    """A real validation error (the kind schemathesis wraps): a problem whose type is not a string."""
    import jsonschema_rs

    try:
        jsonschema_rs.validate({"properties": {"type": {"type": "string"}}}, {"type": 1})
    except jsonschema_rs.ValidationError as exc:
        return exc
    raise AssertionError("the instance should not validate")


def test_an_unconfirmed_purge_excuses_only_its_rejection() -> None:
    """The confirmation must repeat the path's queue name: a rule across path and body that JSON
    Schema cannot state. Only that 422 is excused, and only as a schema-valid rejection."""
    unconfirmed = Answer(422, json.dumps({"type": HOOKS.PURGE_NOT_CONFIRMED, "status": 422}))
    assert not kept(rejected(), unconfirmed)
    assert kept(ServerError(operation="POST /queues/{queue}/purge", status_code=500), unconfirmed)
    assert kept(rejected(), Answer(409, unconfirmed.body))
