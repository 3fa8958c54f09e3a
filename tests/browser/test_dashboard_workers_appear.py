"""The overview is live: a worker started while the page is open appears without a reload, and the
queue cards follow the jobs."""

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
