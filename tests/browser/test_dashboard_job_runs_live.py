"""A job enqueued from the form is followed live on its page, without a reload, to its end; a
running job's progress bar moves; a finished report links its artifact."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack


def _mark(page: Page) -> None:
    """A flag in the page's JS state: still there later means the page was never reloaded."""
    page.evaluate("window.__taskqNoReload = true")


def _not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__taskqNoReload === true"))


def test_enqueue_from_the_form_then_watch_it_succeed(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    page.get_by_role("link", name="Enqueue").click()
    page.get_by_label("Task").select_option("debug.sleep")
    page.get_by_label("Seconds (required)").fill("1.5")
    page.get_by_label("Tag").fill("from the form")
    page.get_by_role("button", name="Enqueue").click()

    page.wait_for_url("**/dashboard/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    _mark(page)
    expect(page.locator("#job-status")).to_have_text("succeeded")
    assert _not_reloaded(page)
    job = stack.job(job_id)
    assert job["status"] == "succeeded"
    assert job["args"] == {"seconds": 1.5, "tag": "from the form"}
    expect(page.locator("#job-args")).to_contain_text('"tag": "from the form"')
    expect(page.locator("#job")).to_contain_text("from the form")  # the result, echoed


def test_progress_bar_moves_while_the_job_runs(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    # debug.sleep reports 0% ("sleeping") when it starts; its end shows the bar full.
    stack.open_before_it_runs(page, "debug.sleep", {"seconds": 3})
    _mark(page)
    bar = page.get_by_role("progressbar", name="Progress")
    expect(page.locator("#job-status")).to_have_text("running")
    expect(bar).to_have_attribute("value", "0")
    expect(page.locator("#job-progress-text")).to_contain_text("sleeping")
    expect(bar).to_have_attribute("value", "100")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    assert _not_reloaded(page)


def test_a_report_shows_its_progress_and_its_artifact(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    job_id = stack.enqueue("generate_report", {"title": "Browser report"})
    page.goto(f"{stack.base}/dashboard/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("value", "100")
    with page.expect_download() as info:
        page.get_by_role("button", name=f"Download {job_id}.csv").click()
    download = info.value
    assert download.suggested_filename == f"{job_id}.csv"
    with open(download.path(), encoding="utf-8") as csv:
        assert csv.readline().startswith("record,queue,job_id")
