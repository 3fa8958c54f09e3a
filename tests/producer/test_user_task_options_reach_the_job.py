"""``POST /jobs`` (the fast path and the route), ``/jobs/batch`` and ``/send-email`` give a job its
task's queue, priority, max_attempts and timeout when the request omits them, and the request's own
values when it gives them; the stored job (read back through ``GET /jobs/{id}``) and the 202 agree.
Bad args for a user task are a 422 naming the field, and nothing is written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from producer.testing import EMAIL, assert_problem

if TYPE_CHECKING:  # a fixture's type; conftest.py is not importable at run time
    from tests.producer.conftest import ClientFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INVOICE = {"task": "acme.sync_invoice", "args": {"invoice_id": "INV-0042", "amount_cents": 1999}}
#: acme.sync_invoice's declared options (tests/fixtures/acme_contract/contract.py).
DECLARED = {"queue": "partners", "priority": 8, "max_attempts": 7, "timeout_seconds": 45.0}
#: The deployment's defaults for options a task leaves open, set away from the built-in ones.
DEPLOYMENT = {"default_max_attempts": 4, "default_timeout_seconds": 99.0}
#: Paths through the producer: the fast path (plain request) and the FastAPI route (Idempotency-Key).
PATHS = {"fast_path": {}, "route": {"Idempotency-Key": "acme-key-1"}}


@pytest.fixture
async def acme(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.syspath_prepend(str(FIXTURES))
    # QUEUES empty: 'partners' is accepted only because the task declares it, as in production.
    async with make_client(taskq_tasks="acme_contract.contract", queues="", **DEPLOYMENT) as client:
        yield client


def _options(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job[k] for k in DECLARED}


async def _stored(client: httpx.AsyncClient, accepted: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = (await client.get(f"/jobs/{accepted['id']}")).json()
    assert _options(stored) == _options(accepted), "the 202 and the stored job disagree"
    return stored


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_omitted_options_are_the_tasks(acme: httpx.AsyncClient, path: str) -> None:
    response = await acme.post("/jobs", json=INVOICE, headers=PATHS[path])
    assert response.status_code == 202, response.text
    assert _options(await _stored(acme, response.json())) == DECLARED


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_the_requests_own_options_win(acme: httpx.AsyncClient, path: str) -> None:
    mine = {"queue": "default", "priority": 0, "max_attempts": 1, "timeout_seconds": 5.0}
    response = await acme.post("/jobs", json={**INVOICE, **mine}, headers=PATHS[path])
    assert response.status_code == 202, response.text
    assert _options(await _stored(acme, response.json())) == mine


async def test_a_task_without_options_gets_the_deployments(acme: httpx.AsyncClient) -> None:
    response = await acme.post("/jobs", json={"task": "acme.ping"})
    assert response.status_code == 202, response.text
    expected = {"queue": "default", "priority": 5, "max_attempts": 4, "timeout_seconds": 99.0}
    assert _options(await _stored(acme, response.json())) == expected


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_batch_jobs_get_the_tasks_options(acme: httpx.AsyncClient, path: str) -> None:
    body = {"jobs": [INVOICE, {**INVOICE, "priority": 1}]}
    response = await acme.post("/jobs/batch", json=body, headers=PATHS[path])
    assert response.status_code == 202, response.text
    first, second = response.json()["jobs"]
    assert _options(await _stored(acme, first)) == DECLARED
    assert _options(await _stored(acme, second)) == {**DECLARED, "priority": 1}


async def test_send_email_keeps_the_builtin_tasks_defaults(acme: httpx.AsyncClient) -> None:
    response = await acme.post("/send-email", json=EMAIL)
    assert response.status_code == 202, response.text
    job = (await acme.get(f"/jobs/{response.json()['job_id']}")).json()
    assert _options(job) == {"queue": "default", "priority": 5, "max_attempts": 4, "timeout_seconds": 99.0}


async def test_bad_args_are_a_422_naming_the_field_and_write_nothing(acme: httpx.AsyncClient) -> None:
    before = (await acme.get("/queues")).json()
    bad = {"task": "acme.sync_invoice", "args": {"invoice_id": "nope", "amount_cents": 0, "extra": 1}}
    for headers in PATHS.values():
        body = assert_problem(await acme.post("/jobs", json=bad, headers=headers), 422)
        locs = {tuple(error["loc"]) for error in body["errors"]}
        assert {
            ("body", "args", "invoice_id"),
            ("body", "args", "amount_cents"),
            ("body", "args", "extra"),
        } <= (locs)
    body = assert_problem(await acme.post("/jobs/batch", json={"jobs": [INVOICE, bad]}), 422)
    assert ("body", "jobs", 1, "args", "invoice_id") in {tuple(e["loc"]) for e in body["errors"]}
    assert (await acme.get("/queues")).json() == before
