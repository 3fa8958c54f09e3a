"""A producer with ``TASKQ_TASKS=acme_contract.contract`` (tests/fixtures) lists the user's tasks with
their args schema and options in ``GET /tasks`` and in ``/openapi.json`` (so ``/docs``), and never
imports the handlers' module, whose partner SDK is not installed."""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:  # a fixture's type; conftest.py is not importable at run time
    from tests.producer.conftest import ClientFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
async def acme(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.syspath_prepend(str(FIXTURES))
    # QUEUES empty: the accepted queues are 'default' and the tasks' own, as in production.
    async with make_client(taskq_tasks="acme_contract.contract", queues="") as client:
        yield client


async def test_get_tasks_shows_the_user_task_with_its_options(acme: httpx.AsyncClient) -> None:
    listed = {t["name"]: t for t in (await acme.get("/tasks")).json()}
    assert {"send_email", "acme.sync_invoice", "acme.ping"} <= listed.keys()
    one = (await acme.get("/tasks/acme.sync_invoice")).json()
    assert one == listed["acme.sync_invoice"]
    assert one["description"] == "Push an invoice to acme's partner API"
    assert one["queue"] == "partners"
    assert one["priority"] == 8
    assert one["max_attempts"] == 7
    assert one["timeout_seconds"] == 45.0
    assert one["retry_backoff_seconds"] == {"base": 2.0, "max": 60.0}
    assert one["isolated"] is False
    assert one["args_schema"]["required"] == ["invoice_id", "amount_cents"]
    assert one["args_schema"]["properties"]["currency"]["enum"] == ["EUR", "USD"]
    # Options the task leaves to the deployment are null, not a copy of today's default.
    ping = listed["acme.ping"]
    assert (ping["queue"], ping["priority"]) == ("default", 5)
    assert ping["max_attempts"] is ping["timeout_seconds"] is ping["retry_backoff_seconds"] is None


async def test_openapi_has_a_request_variant_per_user_task_with_its_defaults(acme: httpx.AsyncClient) -> None:
    doc = (await acme.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert (
        "#/components/schemas/JobRequest.acme.sync_invoice"
        in schemas["JobRequest"]["discriminator"]["mapping"].values()
    )
    variant = schemas["JobRequest.acme.sync_invoice"]
    assert variant["properties"]["task"]["const"] == "acme.sync_invoice"
    assert variant["properties"]["args"] == {"$ref": "#/components/schemas/InvoiceArgs"}
    assert "args" in variant["required"]  # InvoiceArgs has required fields
    assert schemas["InvoiceArgs"]["properties"]["invoice_id"]["pattern"] == "^INV-[0-9]{4,12}$"
    props = variant["properties"]
    assert props["queue"]["default"] == "partners"
    assert props["queue"]["anyOf"][0]["enum"] == ["default", "partners"]
    assert props["priority"]["default"] == 8
    assert props["max_attempts"]["default"] == 7
    assert props["timeout_seconds"]["default"] == 45.0
    assert "this task: 8" in props["priority"]["description"]
    # A task that leaves max_attempts to the deployment documents no number for it.
    assert schemas["JobRequest.acme.ping"]["properties"]["max_attempts"].get("default") is None
    assert schemas["JobRequest.acme.ping"]["properties"]["priority"]["default"] == 5
    # The TaskView schema documents the options.
    assert {"priority", "max_attempts", "timeout_seconds", "retry_backoff_seconds", "isolated"} <= set(
        schemas["TaskView"]["properties"]
    )


async def test_the_producer_never_imports_the_handlers(acme: httpx.AsyncClient) -> None:
    response = await acme.post(
        "/jobs", json={"task": "acme.sync_invoice", "args": {"invoice_id": "INV-0001", "amount_cents": 1}}
    )
    assert response.status_code == 202, response.text
    assert "acme_contract.work" not in sys.modules
    # And the fixture is what it claims: its handlers' module cannot be imported here at all.
    with pytest.raises(ModuleNotFoundError, match="acme_partner_sdk"):
        importlib.import_module("acme_contract.work")
