"""Job data is shown as text: markup in args, results and error messages never becomes elements or
runs (no dialog opens, no injected node exists), on the job page and in the dead-letter list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import Dialog, Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack

PAYLOAD = (
    '<img src=x id=injected onerror="alert(1)"><script id=injected2>alert(2)</script><b id=injected3>b</b>'
)


def _watch_dialogs(page: Page) -> list[str]:
    seen: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


def _nothing_injected(page: Page) -> None:
    for selector in ("#injected", "#injected2", "#injected3", "main img", "main script", "main b"):
        assert page.locator(selector).count() == 0, selector


def test_markup_in_args_and_result_is_text(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    dialogs = _watch_dialogs(page)
    job_id = stack.enqueue("debug.noop", {"tag": PAYLOAD})
    page.goto(f"{stack.base}/dashboard/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    # The args as JSON, the result (noop echoes its tag): the payload's characters, as typed.
    expect(page.locator("#job-args")).to_contain_text(PAYLOAD.replace('"', '\\"'))
    expect(page.locator("#job")).to_contain_text(f'"{PAYLOAD.replace(chr(34), chr(92) + chr(34))}"')
    _nothing_injected(page)
    assert dialogs == []


def test_markup_in_an_error_is_text(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    dialogs = _watch_dialogs(page)
    job_id = stack.enqueue("debug.fail", {"message": PAYLOAD, "retryable": False})
    stack.wait(lambda: stack.job(job_id)["status"] == "failed", "the job to fail")
    page.goto(f"{stack.base}/dashboard/jobs/{job_id}")
    expect(page.locator("#job-error")).to_contain_text(PAYLOAD)
    _nothing_injected(page)
    page.goto(f"{stack.base}/dashboard/dead-letter?queue=default")
    expect(page.locator(f'tr[data-job="{job_id}"]')).to_contain_text(PAYLOAD)
    _nothing_injected(page)
    assert dialogs == []
