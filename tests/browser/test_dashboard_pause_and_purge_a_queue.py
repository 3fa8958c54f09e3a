"""Queue controls on the overview: pause a queue with its card's button and see pending grow while the
worker stays idle, resume and see it drain; purge through a labelled, keyboard-driven confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack


@pytest.fixture(autouse=True)
def _resumed(stack: Stack) -> Iterator[None]:
    """The module's stack is shared: a test that fails half-way must not leave the queue paused."""
    yield
    stack.api("POST", "/queues/default/resume")


def test_pause_lets_pending_grow_while_workers_idle_and_resume_drains_it(
    signed_in: Page, stack: Stack
) -> None:
    page = signed_in
    card = page.get_by_role("article", name="Queue default")
    pending = card.locator('[data-field="pending"]')
    warm = stack.enqueue("debug.noop", {})  # the card exists once the queue has had a job
    stack.wait(lambda: stack.job(warm)["status"] == "succeeded", "the first job to run")

    card.get_by_role("button", name="Pause").click()
    expect(card.locator('[data-field="paused"]')).to_have_text("Paused")
    expect(card.get_by_role("button", name="Resume")).to_be_focused()  # the keyboard stays put
    ids = [stack.enqueue("debug.noop", {}) for _ in range(5)]
    expect(pending).to_have_text("5")
    expect(card.locator('[data-field="running"]')).to_have_text("0")
    assert all(stack.job(job_id)["status"] == "queued" for job_id in ids)
    # The live worker holds nothing (its registry entry is rewritten each heartbeat: one written
    # while it held the warm-up job says so until the next).
    stack.wait(lambda: [w["jobs"] for w in stack.workers()] == [[]], "the worker to list no job")
    assert stack.api("GET", "/queues/default").json()["paused"] is True

    card.get_by_role("button", name="Resume").click()
    expect(card.locator('[data-field="paused"]')).to_have_count(0)
    expect(pending).to_have_text("0")
    stack.wait(
        lambda: all(stack.job(job_id)["status"] == "succeeded" for job_id in ids), "the queue to drain"
    )


def test_purge_asks_in_a_dialog_and_deletes_the_pending_jobs(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    card = page.get_by_role("article", name="Queue default")
    pending = card.locator('[data-field="pending"]')
    first = stack.enqueue("debug.noop", {})  # the card exists once the queue has had a job
    # Run, not left pending by the pause (a worker slow to take it would make the count 4, not 3).
    stack.wait(lambda: stack.job(first)["status"] == "succeeded", "the first job to run")
    card.get_by_role("button", name="Pause").click()
    expect(card.locator('[data-field="paused"]')).to_be_visible()  # the pause is in Redis
    ids = [stack.enqueue("debug.noop", {}) for _ in range(3)]
    expect(pending).to_have_text("3")

    purge = card.get_by_role("button", name="Purge")
    purge.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Purge queue default?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("3 pending jobs")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice first
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(purge).to_be_focused()
    assert stack.api("GET", "/queues/default").json()["pending"] == 3  # cancelled: nothing deleted

    purge.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Purge pending jobs")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Purged 3 pending jobs")).to_be_visible()
    expect(pending).to_have_text("0")
    assert all(stack.api("GET", f"/jobs/{job_id}").status_code == 404 for job_id in ids)
    card.get_by_role("button", name="Resume").click()
    expect(card.locator('[data-field="paused"]')).to_have_count(0)


AXE = Path(__file__).parent / ".axe" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make browser-deps`")
def test_the_paused_card_and_the_open_dialog_pass_axe(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    page.context.add_init_script(path=str(AXE))
    stack.enqueue("debug.noop", {})
    assert stack.api("POST", "/queues/default/pause").status_code == 200
    page.goto(f"{stack.base}/dashboard")
    card = page.get_by_role("article", name="Queue default")
    expect(card.locator('[data-field="paused"]')).to_be_visible()
    card.get_by_role("button", name="Purge").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
            (v) => ({id: v.id, nodes: v.nodes.map((n) => n.target.join(" "))}))"""
    )
    assert violations == []
