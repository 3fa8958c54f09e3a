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
