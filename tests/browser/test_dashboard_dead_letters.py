"""Dead letters from the dashboard: the retry button sends a job back and it runs again; purge asks
for a confirmation, then deletes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack


def _dead(stack: Stack) -> str:
    job_id = stack.enqueue("debug.fail", {"message": "boom", "retryable": False})
    stack.wait(lambda: stack.job(job_id)["status"] == "failed", f"job {job_id} to be dead-lettered")
    return job_id


def test_retry_button_runs_a_dead_job_again(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    job_id = _dead(stack)
    first = stack.job(job_id)
    page.goto(f"{stack.base}/dashboard/dead-letter?queue=default")
    row = page.locator(f'tr[data-job="{job_id}"]')
    expect(row).to_contain_text("DebugPermanentFailure: boom")
    row.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status").filter(has_text="is back in queue")).to_be_visible()

    # It ran again (a later start, and the fresh attempt failed again: debug.fail always fails).
    stack.wait(
        lambda: (j := stack.job(job_id))["status"] == "failed" and j["started_at"] > first["started_at"],
        "the retried job to run again",
    )
    expect(page.locator(f'tr[data-job="{job_id}"]')).to_be_visible()  # back in the live list


def test_purge_asks_first_then_deletes(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    keep, purge = _dead(stack), _dead(stack)
    page.goto(f"{stack.base}/dashboard/dead-letter?queue=default")
    row = page.locator(f'tr[data-job="{purge}"]')
    row.get_by_role("button", name="Purge").click()
    confirm = row.get_by_role("button", name="Confirm purge")
    expect(confirm).to_be_focused()
    row.get_by_role("button", name="Cancel").click()
    assert stack.api("GET", f"/jobs/{purge}").status_code == 200  # cancelled: nothing deleted

    row.get_by_role("button", name="Purge").click()
    row.get_by_role("button", name="Confirm purge").click()
    expect(page.locator(f'tr[data-job="{purge}"]')).to_have_count(0)
    assert stack.api("GET", f"/jobs/{purge}").status_code == 404
    expect(page.locator(f'tr[data-job="{keep}"]')).to_be_visible()
