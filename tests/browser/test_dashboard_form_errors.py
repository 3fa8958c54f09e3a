"""The enqueue form validates like the API: a 422's messages appear next to the fields they name,
word for word, and nothing is enqueued."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack


def _message(stack: Stack, args: dict[str, Any], priority: int, loc: tuple[str, ...]) -> str:
    answer = stack.api("POST", "/jobs", json={"task": "debug.sleep", "args": args, "priority": priority})
    assert answer.status_code == 422, answer.text
    message: str = {tuple(e["loc"]): e["msg"] for e in answer.json()["errors"]}[loc]
    return message


def test_api_422_messages_show_next_to_their_fields(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    before = stack.api("GET", "/queues/default").json()["counters"].get("enqueued", 0)
    page.get_by_role("link", name="Enqueue").click()
    page.get_by_label("Task").select_option("debug.sleep")
    page.get_by_label("Seconds (required)").fill("-1")
    page.get_by_label("Priority").fill("12")
    page.get_by_role("button", name="Enqueue").click()

    # The API checks the job's fields before its args: the same bodies sent to it directly give
    # the messages the form must show.
    priority = _message(stack, {"seconds": -1}, 12, ("body", "priority"))
    expect(page.locator("#f-priority-error")).to_have_text(priority)
    expect(page.get_by_label("Priority")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Priority").fill("5")
    page.get_by_role("button", name="Enqueue").click()
    seconds = _message(stack, {"seconds": -1}, 5, ("body", "args", "seconds"))
    expect(page.locator("#f-args-seconds-error")).to_have_text(seconds)
    expect(page.locator("#f-priority-error")).to_be_hidden()
    expect(page.get_by_label("Seconds (required)")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Seconds (required)")).to_have_accessible_description(seconds)
    assert page.url.endswith("/dashboard/enqueue")  # still on the form, with what was typed
    after = stack.api("GET", "/queues/default").json()["counters"].get("enqueued", 0)
    assert after == before


def test_a_missing_required_arg_is_named(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    page.goto(f"{stack.base}/dashboard/enqueue?task=send_email")
    page.get_by_label("Subject (required)").fill("Hello")
    page.get_by_role("button", name="Enqueue").click()
    expect(page.locator("#f-args-recipient_email-error")).to_have_text("Field required")
    expect(page.locator("#f-args-body-error")).to_have_text("Field required")
    expect(page.locator("#f-args-subject-error")).to_be_hidden()
