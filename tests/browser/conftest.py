"""Browser fixtures: the real producer (``python -m producer`` on 127.0.0.1, API_TOKEN set) and real
``python -m worker`` processes on the session's Redis under a unique prefix, driven through Debian's
Chromium by Playwright (its bundled driver, this browser: nothing is downloaded).

Every test here is marked ``browser`` and skipped, with the reason, only when /usr/bin/chromium is
absent (CI installs it: ``apt-get install -y chromium``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from taskq.localserver import LocalRedis, free_port
from worker.testing import START_SECONDS, settings_env, worker_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
TOKEN = "browser-test-token-0123456789"
#: How long the UI has to show a change: generous, because six suites may share two cores.
UI_TIMEOUT_MS = 20_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason="no /usr/bin/chromium (apt-get install -y chromium)"))


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll a condition with a deadline (state, never a bare sleep, is the synchronisation)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Stack:
    base: str
    redis_url: str
    prefix: str
    tmp: Path
    http: httpx.Client
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    token: str = TOKEN

    def sign_in(self, page: Page, path: str = "/dashboard") -> None:
        """Open the page and answer the token prompt."""
        page.goto(f"{self.base}{path}")
        page.get_by_label("API token").fill(self.token)
        page.get_by_role("button", name="Use this token").click()
        expect(page.locator("#token-panel")).to_be_hidden()

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        wait_until(predicate, timeout, what)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, **kw)

    def enqueue(self, task: str, args: dict[str, Any], **extra: Any) -> str:
        response = self.api("POST", "/jobs", json={"task": task, "args": args, **extra})
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def open_before_it_runs(self, page: Page, task: str, args: dict[str, Any]) -> str:
        """Enqueue a job and open its page, following it live, before a worker may take it (the queue
        is paused meanwhile): a page slower to open than a job of a few seconds sees only its end."""
        assert self.api("POST", "/queues/default/pause").status_code == 200
        try:
            job_id = self.enqueue(task, args)
            page.goto(f"{self.base}/dashboard/jobs/{job_id}")
            expect(page.locator("#job-status")).to_have_text("queued")
            expect(page.locator("#live-status")).to_have_text("Live")
        finally:
            self.api("POST", "/queues/default/resume")
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.api("GET", f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc

    def workers(self) -> list[dict[str, Any]]:
        doc: list[dict[str, Any]] = self.api("GET", "/workers").json()
        return doc

    def start_worker(self, **overrides: Any) -> subprocess.Popen[bytes]:
        settings = worker_settings(self.redis_url, self.prefix, self.tmp, **overrides)
        index = len(self.procs)
        with (self.tmp / f"worker-{index}.log").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env=settings_env(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp,
            )
        self.procs.append(proc)
        before = {w["id"] for w in self.workers()}
        wait_until(
            lambda: len({w["id"] for w in self.workers()} - before) == 1 or proc.poll() is not None,
            START_SECONDS,
            what="the worker to register",
        )
        assert proc.poll() is None, (self.tmp / f"worker-{index}.log").read_text()
        return proc


def _start_producer(redis_url: str, prefix: str, tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQ_", "REDIS_", "API_"))}
    env.update({
        "API_HOST": "127.0.0.1", "API_PORT": str(port), "API_TOKEN": TOKEN, "REDIS_URL": redis_url,
        "TASKQ_PREFIX": prefix, "ENVIRONMENT": "test", "DEBUG_TASKS": "true", "QUEUES": "*",
        "REPORTS_DIR": str(tmp / "reports"), "LEASE_SECONDS": "2", "HEARTBEAT_SECONDS": "0.5",
        "TASKQ_ENV_FILE": "",
    })  # fmt: skip
    with (tmp / "producer.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "producer"], env=env, stdout=log, stderr=log)


@pytest.fixture(scope="module")
def stack(redis_server: LocalRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A producer and one worker per test module (starting them is most of a test's time; the tests
    of a module tell their jobs apart by id); more workers with ``stack.start_worker()``."""
    tmp_path = tmp_path_factory.mktemp("stack")
    prefix = f"b{uuid.uuid4().hex[:12]}"
    port = free_port()
    producer = _start_producer(redis_server.url, prefix, tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    s = Stack(base, redis_server.url, prefix, tmp_path, http, [producer])
    try:

        def up() -> bool:
            assert producer.poll() is None, (tmp_path / "producer.log").read_text()
            try:
                return http.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, START_SECONDS, what="the producer to answer")
        s.start_worker()
        yield s
    finally:
        for proc in s.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in s.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        http.close()


# Per module, not per session: Playwright's sync API runs an event loop in this thread while it is
# open, and pytest-asyncio cannot run the other suites' async tests inside a running loop.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (empty sessionStorage): the token is asked for again."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def signed_in(page: Page, stack: Stack) -> Page:
    stack.sign_in(page)
    expect(page.locator("#workers tbody tr")).not_to_have_count(0)
    return page
