"""The overview is live: a worker started while the page is open appears without a reload, the
queue cards follow the jobs, and the lookup answers with the API's words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack


def test_a_second_worker_appears(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    page.evaluate("window.__taskqNoReload = true")
    rows = page.locator("#workers tbody tr")
    before = len(stack.workers())
    expect(rows).to_have_count(before)
    stack.start_worker()
    expect(rows).to_have_count(before + 1)
    for worker in stack.workers():
        expect(page.locator(f'#workers tr[data-worker="{worker["id"]}"]')).to_be_visible()
    assert page.evaluate("window.__taskqNoReload === true")


def test_queue_card_counts_what_runs(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    job_id = stack.enqueue("debug.sleep", {"seconds": 30})
    card = page.get_by_role("article", name="Queue default")
    expect(card.locator('[data-field="running"]')).to_have_text("1")
    page.get_by_label("Job id").fill(job_id)
    page.get_by_role("button", name="Open").click()
    page.wait_for_url(f"**/dashboard/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("running")
    assert stack.api("DELETE", f"/jobs/{job_id}").status_code in (200, 202)


def test_lookup_says_what_is_wrong_with_an_id(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    lookup, error = page.get_by_label("Job id"), page.locator("#lookup-id-error")
    lookup.fill("not-an-id")
    page.get_by_role("button", name="Open").click()
    # The API's own 422 message for a malformed id, next to the field.
    expected = stack.api("GET", "/jobs/not-an-id").json()["errors"][0]["msg"]
    expect(error).to_have_text(expected)
    expect(lookup).to_have_attribute("aria-invalid", "true")
    unknown = "01a233c4-70fb-7e77-b3c2-40a66d03aa0e"
    lookup.fill(unknown)
    page.get_by_role("button", name="Open").click()
    expect(error).to_have_text(stack.api("GET", f"/jobs/{unknown}").json()["detail"])
    assert page.url.endswith("/dashboard")
