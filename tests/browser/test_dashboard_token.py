"""The token: asked once, kept for the tab's session, and the only way to the data.

With API_TOKEN set, the page shell and its assets open without it, while every data request the
dashboard makes is refused without it (401)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from playwright.sync_api import Page, Request, expect

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack


def test_token_is_asked_once_and_kept_across_pages(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.base}/dashboard")
    expect(page.get_by_label("API token")).to_be_focused()
    expect(page.locator("#queue-cards")).to_contain_text("Loading")  # nothing shown before the token

    page.get_by_label("API token").fill("not-the-token")
    page.get_by_role("button", name="Use this token").click()
    expect(page.locator("#token-error")).to_contain_text("refused")

    page.get_by_label("API token").fill(stack.token)
    page.get_by_role("button", name="Use this token").click()
    expect(page.locator("#workers tbody tr")).not_to_have_count(0)

    # Another page and a reload: the token is remembered, never asked again.
    page.get_by_role("link", name="Enqueue").click()
    expect(page.locator("#f-task option")).not_to_have_count(0)
    page.reload()
    expect(page.locator("#f-task option")).not_to_have_count(0)
    expect(page.locator("#token-panel")).to_be_hidden()


def test_every_data_request_needs_the_token(page: Page, stack: Stack) -> None:
    job_id = stack.enqueue("debug.noop", {"tag": "seen"})
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r))
    stack.sign_in(page)
    expect(page.locator("#workers tbody tr")).not_to_have_count(0)
    for path in ("/dashboard/dead-letter", "/dashboard/enqueue", f"/dashboard/jobs/{job_id}"):
        page.goto(f"{stack.base}{path}")
        expect(page.locator("main .muted", has_text="Loading")).to_have_count(0)

    urls = {r.url for r in requests if r.url.startswith(stack.base)}
    shells = {u for u in urls if u.removeprefix(stack.base).startswith("/dashboard")}
    data = urls - shells
    # The pages read queues, workers, tasks, the job and the dead letters: all through the API.
    assert {"/queues", "/workers", "/tasks", f"/jobs/{job_id}"} <= {u.removeprefix(stack.base) for u in data}
    with httpx.Client(timeout=10) as anonymous:
        for url in sorted(data):
            response = anonymous.get(url)
            assert response.status_code == 401, url
            assert response.headers["www-authenticate"].startswith("Bearer")
        for url in sorted(shells):
            response = anonymous.get(url)
            assert response.status_code == 200, url
            assert "default-src 'self'" in response.headers["content-security-policy"]
            # A shell or asset carries no job data: the job's id appears in no response body.
            assert job_id not in response.text
