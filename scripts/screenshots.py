"""`make screenshots`: docs/img/dashboard-*.png, taken from a real system in Debian's chromium.

    uv run python scripts/screenshots.py [--out docs/img]

Starts an embedded Redis on 127.0.0.1, the producer (with an API token, typed into the page like a
user would) and two workers, puts some traffic through (a trickle with a burst now and then, so the
latency chart has waits to show), pauses one queue, and photographs the four pages. Nothing is
mocked: the numbers on the pictures are the ones the system had.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from taskq.localserver import LocalRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
TOKEN = "screenshot-token-0123456789"  # noqa: S105  (a throwaway system on 127.0.0.1)


def wait(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextmanager
def system(tmp: Path) -> Iterator[tuple[str, httpx.Client]]:
    """Redis, the producer and two workers, all on 127.0.0.1; stopped with SIGTERM on exit."""
    with LocalRedis().running() as redis:
        port = free_port()
        ours = ("TASKQ_", "REDIS_", "API_", "WORKER_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        env.update({
            "REDIS_URL": redis.url, "TASKQ_PREFIX": "taskq", "TASKQ_ENV_FILE": "",
            "ENVIRONMENT": "development",
            "DEBUG_TASKS": "true", "QUEUES": "default,emails,reports", "REPORTS_DIR": str(tmp / "reports"),
            "WORKER_STATE_DIR": str(tmp / "state"), "API_HOST": "127.0.0.1", "API_PORT": str(port),
            "API_TOKEN": TOKEN, "WORKER_QUEUES": "default,emails,reports", "REQUIRE_PERSISTENCE": "false",
        })  # fmt: skip
        log = (tmp / "services.log").open("wb")
        procs = [subprocess.Popen([sys.executable, "-m", "producer"], env=env, stdout=log, stderr=log)]
        procs += [
            subprocess.Popen([sys.executable, "-m", "worker"], env=env, stdout=log, stderr=log, cwd=tmp)
            for _ in range(2)
        ]
        base = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        try:

            def up() -> bool:
                try:
                    return len(http.get("/workers").json()) == 2
                except (httpx.TransportError, ValueError, TypeError):
                    return False

            wait(up, "the producer and two workers")
            yield base, http
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
            http.close()
            log.close()


def enqueue(http: httpx.Client, task: str, args: dict[str, Any], **extra: Any) -> str:
    response = http.post("/jobs", json={"task": task, "args": args, **extra})
    response.raise_for_status()
    job_id: str = response.json()["id"]
    return job_id


BURST_EVERY = 100  # trickle ticks between bursts (about 5 s)
BURST = 60  # jobs in a burst: more than the two workers run at once, so some of them wait


def traffic(http: httpx.Client, stop: threading.Event) -> None:
    """A steady trickle of jobs with a burst now and then, so the cards and both charts have
    something to show."""
    n = 0
    while not stop.wait(0.05):
        n += 1
        for _ in range(BURST if n % BURST_EVERY == 0 else 1):
            enqueue(http, "debug.sleep", {"seconds": 0.2 + (n % 5) / 10, "tag": f"job {n}"})


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/dashboard")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Use this token").click()
    page.locator("#workers tbody tr").first.wait_for()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, system(Path(tmp)) as (base, http), sync_playwright() as pw:
        for n in range(3):
            enqueue(http, "debug.fail", {"message": f"upstream refused request {n}", "retryable": False})
        enqueue(http, "debug.sleep", {"seconds": 60, "tag": "scheduled"}, delay_seconds=600)
        stop = threading.Event()
        feeder = threading.Thread(target=traffic, args=(http, stop), daemon=True)
        feeder.start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        sign_in(page, base)
        # A paused queue: jobs keep arriving, no worker takes them (the card's badge and Resume).
        http.post("/queues/emails/pause").raise_for_status()
        for n in range(4):
            enqueue(http, "debug.noop", {"tag": f"held {n}"}, queue="emails")
        # Let the charts collect about a minute of samples; open one worker's task list.
        chart_ready = time.monotonic() + 60
        wait(lambda: time.monotonic() > chart_ready, "the charts to fill", timeout=70)
        page.locator('#latency-now [data-field="p95"]').wait_for()
        page.locator("#workers summary").first.click()
        page.screenshot(path=out / "dashboard-overview.png", full_page=True)
        stop.set()
        feeder.join()

        report = enqueue(http, "generate_report", {"title": "Weekly job statistics"})
        running = enqueue(http, "debug.steps", {"steps": 20, "step_seconds": 1.5}, priority=7)
        page.goto(f"{base}/dashboard/jobs/{report}")
        # Its history from its events (replayed from the queue's stream), not from its timestamps.
        page.locator("#job-history").filter(has_text="running (attempt 1)").wait_for()
        page.get_by_text("succeeded", exact=True).first.wait_for()
        page.screenshot(path=out / "dashboard-job.png", full_page=True)
        page.goto(f"{base}/dashboard/jobs/{running}")
        # A few progress reports in: the bar has moved, the history has its running event.
        page.locator("#job-progress-text").filter(has_text="15%").wait_for(timeout=30_000)
        page.screenshot(path=out / "dashboard-job-running.png", full_page=True)

        page.goto(f"{base}/dashboard/dead-letter?queue=default")
        page.locator("tr[data-job]").nth(2).wait_for()
        page.locator("tr[data-job] button", has_text="Purge").first.click()
        page.screenshot(path=out / "dashboard-dead-letters.png", full_page=True)

        page.goto(f"{base}/dashboard/enqueue?task=send_email")
        page.get_by_label("Recipient Email (required)").fill("not an address")
        page.get_by_label("Subject (required)").fill("Your report is ready")
        page.get_by_role("button", name="Enqueue").click()
        page.locator("#f-args-recipient_email-error").filter(has_text="email").wait_for()
        page.screenshot(path=out / "dashboard-enqueue.png", full_page=True)
        browser.close()
        http.delete(f"/jobs/{running}")
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
