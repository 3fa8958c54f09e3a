"""generate_report: a CSV of job statistics over a time window, written to ``$REPORTS_DIR/<job id>.csv``.

The producer serves the file at ``GET /jobs/{id}/artifact``; the job's result names it:
``{"artifact": "<job id>.csv", "content_type": "text/csv", "rows": n, ...}``. The file is written
under a temporary name and renamed, so a reader never sees half a report (and a retry overwrites).

Rows: one ``queue`` row per queue (depths and lifetime counters), then one ``dead_letter`` row per job
that was dead-lettered inside the window, newest first, up to ``rows``.

Retention: every worker sweeps ``REPORTS_DIR`` and deletes files older than ``REPORT_TTL_SECONDS``
(by modification time, crash leftovers ``.*.tmp`` included); the producer answers 410 for them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from taskq.builtin_tasks import GenerateReportArgs
from worker.context import JobContext

log = logging.getLogger("taskq.worker.reports")

#: Files one sweep deletes at most: a pass holds a thread-pool thread for a bounded time. A pass
#: that hits it is followed by another at once (a backlog drains in passes, never in one long one).
SWEEP_MAX_DELETIONS = 1000

COLUMNS = (
    "record", "queue", "job_id", "task", "status", "attempts", "finished_at", "reason", "error",
    "pending", "scheduled", "running", "dead", "succeeded", "failed", "retried", "cancelled",
)  # fmt: skip


def _ms(value: datetime) -> int:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


async def generate_report(args: GenerateReportArgs, ctx: JobContext) -> Any:
    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(days=1)
    if since > until:
        raise ValueError("since is after until")
    queues = args.queues if args.queues is not None else await ctx.taskq.queues()
    ctx.progress(0, f"reading {len(queues)} queues")

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="raise")
    writer.writeheader()
    job_rows = 0
    for index, queue in enumerate(queues):
        stats = await ctx.taskq.stats(queue)
        c = stats.counters
        writer.writerow(
            {"record": "queue", "queue": queue, "pending": stats.pending, "scheduled": stats.scheduled,
             "running": stats.running, "dead": stats.dead, "succeeded": c.get("succeeded", 0),
             "failed": c.get("failed", 0), "retried": c.get("retried", 0),
             "cancelled": c.get("cancelled", 0)}
        )  # fmt: skip
        cursor: str | None = f"{_ms(until)}:0"
        since_ms = _ms(since)
        while cursor and job_rows < args.rows:
            page = await ctx.taskq.dead_letters(queue, limit=min(200, args.rows - job_rows), cursor=cursor)
            for job_id in page.job_ids:
                job = await ctx.taskq.get_job(job_id, queue)
                if job is None:
                    continue
                if job.finished_at and _ms(job.finished_at) < since_ms:
                    cursor = None
                    break
                writer.writerow(
                    {"record": "dead_letter", "queue": queue, "job_id": job.id, "task": job.task,
                     "status": job.status.value, "attempts": job.attempts,
                     "finished_at": job.finished_at.isoformat() if job.finished_at else "",
                     "reason": job.error.reason if job.error else "",
                     "error": f"{job.error.type}: {job.error.message}" if job.error else ""}
                )  # fmt: skip
                job_rows += 1
            else:
                cursor = page.next_cursor
        ctx.progress(100 * (index + 1) / max(1, len(queues)), f"{index + 1}/{len(queues)} queues")

    name = f"{ctx.job_id}.csv"
    directory = ctx.settings.reports_dir
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(out.getvalue(), encoding="utf-8", newline="")
    tmp.replace(directory / name)
    return {
        "artifact": name,
        "content_type": "text/csv",
        "title": args.title,
        "rows": job_rows,
        "queues": len(queues),
        "since": since.isoformat(),
        "until": until.isoformat(),
    }


def sweep_reports(directory: Path, ttl_seconds: float, *, limit: int = SWEEP_MAX_DELETIONS) -> int:
    """Delete the regular files of ``directory`` last modified more than ``ttl_seconds`` ago, at most
    ``limit`` of them; how many were deleted. Several workers may share the directory: a file another
    one deleted first is not an error. (Blocking: run it in a thread.)"""
    cutoff = time.time() - ttl_seconds
    deleted = 0
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return 0  # no report written yet
    with entries:
        for entry in entries:
            if deleted >= limit:
                break
            try:
                if (
                    entry.is_file(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff
                ):
                    os.unlink(entry.path)
                    deleted += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("report not deleted", extra={"file": entry.name, "error": str(exc)})
    return deleted


def sweep_interval(ttl_seconds: float) -> float:
    """A tenth of the retention (a file outlives it by at most that), between 0.2 s and an hour."""
    return min(3600.0, max(0.2, ttl_seconds / 10))


async def sweep_reports_forever(directory: Path, ttl_seconds: float) -> None:
    """The worker's background retention of report files; cancelled at shutdown."""
    while True:
        deleted = await asyncio.to_thread(sweep_reports, directory, ttl_seconds)
        if deleted:
            log.info("old reports deleted", extra={"deleted": deleted, "ttl_seconds": ttl_seconds})
        if deleted < SWEEP_MAX_DELETIONS:
            await asyncio.sleep(sweep_interval(ttl_seconds))  # a timer between passes, not a poll
