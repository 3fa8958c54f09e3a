"""The dashboard follows jobs over the producer's Server-Sent Events: a job page's history is the job's
events (every transition, in order), its progress bar moves with each report, and the job reaches
its end on screen without a reload; the overview reads /events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack

#: The bar's value, -1 while there is none (evaluate, not wait_for_function: the page's CSP forbids eval).
BAR = "() => { const bar = document.getElementById('job-progress'); return bar ? Number(bar.value) : -1 }"


def _history(page: Page) -> list[str]:
    types: list[str] = page.locator("#job-history li").evaluate_all("els => els.map(e => e.dataset.type)")
    return types


def test_the_job_page_shows_its_events_and_reaches_succeeded_live(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    page.get_by_role("link", name="Enqueue").click()
    page.get_by_label("Task").select_option("debug.sleep")
    page.get_by_label("Seconds (required)").fill("1.5")
    page.get_by_role("button", name="Enqueue").click()
    page.wait_for_url("**/dashboard/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    page.evaluate("window.__taskqNoReload = true")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#job-history li")).to_have_count(3)
    assert _history(page) == ["queued", "running", "succeeded"]
    expect(page.locator("#job-history")).to_contain_text("running (attempt 1)")
    assert page.evaluate("window.__taskqNoReload === true")
    assert any(url.endswith(f"/jobs/{job_id}/events") for url in streams)


def test_the_progress_bar_moves_with_each_report(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    stack.open_before_it_runs(page, "debug.steps", {"steps": 8, "step_seconds": 0.5})
    page.evaluate("window.__taskqNoReload = true")
    # Somewhere mid-way first, then further: the bar moved while the job ran, without a reload.
    seen: list[float] = []

    def bar_at(low: float, high: float) -> bool:
        seen.append(page.evaluate(BAR))
        return low < seen[-1] < high

    stack.wait(lambda: bar_at(0, 100), "the bar to show a step")
    first = seen[-1]
    stack.wait(lambda: bar_at(first, 100.1), "the bar to move on")
    expect(page.locator("#job-progress-text")).to_contain_text("step")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("value", "100")
    assert "progress" not in _history(page)  # reports move the bar; the history keeps transitions
    assert page.evaluate("window.__taskqNoReload === true")


def test_the_overview_follows_the_event_stream(page: Page, stack: Stack) -> None:
    # The first try goes without a token (401: the prompt), the one after the prompt streams.
    with page.expect_response(lambda r: r.url.endswith("/events") and r.status == 200) as opened:
        stack.sign_in(page)
    assert opened.value.headers["content-type"].startswith("text/event-stream")
    assert opened.value.request.all_headers().get("authorization") == f"Bearer {stack.token}"
    job_id = stack.enqueue("debug.sleep", {"seconds": 30})
    card = page.get_by_role("article", name="Queue default")
    expect(card.locator('[data-field="running"]')).to_have_text("1")
    assert stack.api("DELETE", f"/jobs/{job_id}").status_code in (200, 202)
    expect(card.locator('[data-field="running"]')).to_have_text("0")
