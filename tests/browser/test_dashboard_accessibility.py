"""axe-core finds no accessibility violation on the four pages (labels, landmarks, contrast, names).

axe-core comes from npm through `make browser-deps`, into tests/browser/.axe (not committed); it is
added to each page by the browser itself (an init script), nothing is fetched while the tests run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack

AXE = Path(__file__).parent / ".axe" / "node_modules" / "axe-core" / "axe.min.js"


def _violations(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
            (v) => ({id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(" "))}))"""
    )
    return found


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make browser-deps`")
def test_pages_have_no_axe_violations(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    page.context.add_init_script(path=str(AXE))
    ok = stack.enqueue("debug.noop", {"tag": "a11y"})
    dead = stack.enqueue("debug.fail", {"retryable": False})
    stack.wait(lambda: stack.job(dead)["status"] == "failed", "the job to fail")
    pages = {
        "/dashboard": "#queue-cards article",
        f"/dashboard/jobs/{ok}": "#job-status",
        f"/dashboard/jobs/{dead}": "#job-error",
        "/dashboard/dead-letter?queue=default": f'tr[data-job="{dead}"]',
        "/dashboard/enqueue?task=generate_report": "#f-args-title",
    }
    report = {}
    for path, ready in pages.items():
        page.goto(f"{stack.base}{path}")
        expect(page.locator(ready).first).to_be_visible()
        report[path] = _violations(page)
    assert report == {path: [] for path in pages}

    # The checker can see a fault: an input stripped of its label is reported.
    page.goto(f"{stack.base}/dashboard")
    page.evaluate("document.querySelector('label[for=lookup-id]').remove()")
    assert "label" in {v["id"] for v in _violations(page)}


def test_a_job_can_be_enqueued_and_retried_by_keyboard_alone(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    page.goto(f"{stack.base}/dashboard/enqueue?task=debug.fail")
    page.get_by_label("Task").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Message")).to_be_focused()
    page.keyboard.type("typed, not clicked")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Retryable")).to_be_focused()
    page.keyboard.press("Space")  # unchecked: the failure is permanent
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # submits the form from a text field
    page.wait_for_url("**/dashboard/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#job-status")).to_have_text("failed")
    assert stack.job(job_id)["error"]["message"] == "typed, not clicked"
    first_start = stack.job(job_id)["started_at"]

    page.keyboard.press("Tab")  # from the page into its controls: the skip link comes first
    retry = page.get_by_role("button", name="Retry")
    for _ in range(10):
        if retry.evaluate("(el) => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(retry).to_be_focused()
    # The dashboard's own focus ring (3px, contrasting), not the browser's faint default.
    ring = retry.evaluate("(el) => [getComputedStyle(el).outlineStyle, getComputedStyle(el).outlineWidth]")
    assert ring == ["solid", "3px"]
    page.keyboard.press("Enter")
    stack.wait(lambda: stack.job(job_id)["started_at"] != first_start, "the retried job to run again")
