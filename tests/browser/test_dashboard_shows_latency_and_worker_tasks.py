"""The overview's latency chart and workers table: the chart's text alternative gives the exact
enqueue-to-start waits of the jobs that ran while the page was open (p50 and p95, measured from the
job's queued event, or its due time when it was scheduled, to its running event), and each worker's
row lists the tasks it serves, as text, staying open across the table's live refreshes."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from playwright.sync_api import Dialog, Page, expect

from taskq import Taskq
from taskq.config import QueueConfig
from taskq.redis_client import connect
from taskq.settings import CoreSettings
from taskq.workers import WorkerBeat, beat, deregister

if TYPE_CHECKING:  # fixtures come from conftest.py, which is not importable at run time
    from tests.browser.conftest import Stack


def _events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    """The job's events, read from its SSE route (the stream ends once the job has ended)."""
    body = stack.api("GET", f"/jobs/{job_id}/events", headers={"Accept": "text/event-stream"}).text
    return [json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")]


def _wait_ms(stack: Stack, job_id: str) -> int:
    """Enqueue-to-start, from the events' stream ids ('<ms>-<seq>'): its wait started when it was
    queued, or when it came due if it was scheduled; it ended when a worker took it."""
    start = due = None
    for event in _events(stack, job_id):
        at = int(event["id"].split("-")[0])
        if event["status"] == "scheduled":
            due = event.get("due")
        elif event["status"] == "queued":
            start = min(due, at) if due is not None else at
        elif event["type"] == "running":
            assert start is not None, event
            return at - start
    raise AssertionError(f"job {job_id} never ran")


def _nearest_rank(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _live(page: Page) -> None:
    # The page's /events stream is open (it starts "from now"): jobs enqueued after this are seen.
    expect(page.locator("#live-status")).to_have_text("Live")


def test_latency_chart_shows_the_exact_waits_of_jobs_that_ran(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    _live(page)
    text = page.locator("#latency-now")
    expect(text).to_contain_text("No job has started")
    ids = [stack.enqueue("debug.noop", {"tag": f"latency {n}"}) for n in range(6)]
    stack.wait(lambda: all(stack.job(i)["status"] == "succeeded" for i in ids), "the jobs to succeed")
    waits = [_wait_ms(stack, i) for i in ids]
    for field, p in (("window-p50", 0.5), ("window-p95", 0.95)):
        expected = str(_nearest_rank(waits, p))
        expect(text.locator(f'[data-field="{field}"]')).to_have_attribute("data-ms", expected)
    expect(text).to_contain_text("over 6 jobs.")
    # The chart drew them: a line or a dot per percentile, and a title naming the latest values.
    chart = page.locator("#latency-chart svg")
    expect(chart.locator(".series:not(.alt)")).not_to_have_count(0)
    expect(chart.locator(".series.alt")).not_to_have_count(0)
    expect(chart.locator("title")).to_contain_text("latest p50")


def test_latency_is_drawn_while_jobs_keep_starting(signed_in: Page, stack: Stack) -> None:
    """Under a steady flow of events the chart still updates (a redraw postponed by every new
    event, a debounce, would wait for the flow to stop)."""
    page = signed_in
    _live(page)
    p50 = page.locator('#latency-now [data-field="p50"]')
    deadline = time.monotonic() + 20
    n = 0
    while p50.count() == 0:  # a job enqueued every round trip until the page shows a value
        assert time.monotonic() < deadline, f"no latency shown after {n} jobs kept flowing"
        stack.enqueue("debug.noop", {"tag": f"flow {n}"})
        n += 1
    expect(p50).to_have_text(re.compile(r"^\d+(\.\d+)? (ms|s)$"))


def test_a_scheduled_job_waits_from_its_due_time(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    _live(page)
    job_id = stack.enqueue("debug.noop", {"tag": "later"}, delay_seconds=1)
    stack.wait(lambda: stack.job(job_id)["status"] == "succeeded", "the scheduled job to succeed", timeout=30)
    wait = _wait_ms(stack, job_id)
    # Its second of delay is not latency: the page counts from the due time, as _wait_ms does.
    p50 = page.locator('#latency-now [data-field="window-p50"]')
    expect(p50).to_have_attribute("data-ms", str(wait))
    assert int(p50.get_attribute("data-ms") or "-1") < 1000


def test_workers_table_lists_the_tasks_each_worker_serves(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    [worker] = stack.workers()
    tasks = worker["tasks"]
    assert {"debug.noop", "send_email"} <= set(tasks)
    row = page.locator(f'#workers tr[data-worker="{worker["id"]}"]')
    summary = row.get_by_text(f"{len(tasks)} tasks", exact=True)
    expect(summary).to_be_visible()
    expect(row.get_by_text("send_email", exact=True)).to_be_hidden()  # compact until opened
    summary.click()
    for name in tasks:
        expect(row.get_by_text(name, exact=True)).to_be_visible()

    # Opened, it stays open when the table is rebuilt (a job's events refresh /workers).
    page.evaluate("window.__tasksTable = document.querySelector('#workers table')")
    stack.enqueue("debug.noop", {"tag": "refresh the workers"})
    stack.wait(
        lambda: bool(page.evaluate("document.querySelector('#workers table') !== window.__tasksTable")),
        "the workers table to be rebuilt",
    )
    expect(row.locator("details")).to_have_attribute("open", "")
    expect(row.get_by_text("send_email", exact=True)).to_be_visible()


def _announce(stack: Stack, worker_id: str, tasks: tuple[str, ...], *, gone: bool = False) -> None:
    """A registry entry as a worker's heartbeat writes it (or its removal), through taskq's own
    functions, on a thread: Playwright's sync API owns this thread's event loop."""

    async def run() -> None:
        client = connect(CoreSettings(redis_url=stack.redis_url, environment="test"))
        try:
            taskq = Taskq(client, QueueConfig.of(taskq_prefix=stack.prefix, queues="*"))
            if gone:
                await deregister(taskq, worker_id)
            else:
                now = time.time_ns() // 1_000_000
                entry = WorkerBeat(worker_id, "elsewhere", 1, now, 1, ("default",), (), tasks)
                await beat(taskq, entry, 60_000)
        finally:
            await client.aclose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=30)


def test_task_names_are_shown_as_text(signed_in: Page, stack: Stack) -> None:
    page = signed_in
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    payload = '<img src=x id=injected onerror="alert(1)">'
    _announce(stack, "markup-worker", (payload, "plain.task"))
    try:
        row = page.locator('#workers tr[data-worker="markup-worker"]')
        row.get_by_text("2 tasks", exact=True).click()
        expect(row.get_by_text(payload, exact=True)).to_be_visible()
        assert page.locator("#injected").count() == 0
        assert page.locator("#workers img").count() == 0
        assert dialogs == []
    finally:
        _announce(stack, "markup-worker", (), gone=True)
