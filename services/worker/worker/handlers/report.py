"""generate_report: a CSV of job statistics over a time window, written to ``$REPORTS_DIR/<job id>.csv``.

The producer serves the file at ``GET /jobs/{id}/artifact``; the job's result names it:
``{"artifact": "<job id>.csv", "content_type": "text/csv", "rows": n, ...}``. The file is written
under a temporary name and renamed, so a reader never sees half a report (and a retry overwrites).

Rows: one ``queue`` row per queue (depths and lifetime counters), then one ``dead_letter`` row per job
that was dead-lettered inside the window, newest first, up to ``rows``.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from taskq.tasks import GenerateReportArgs
from worker.context import JobContext

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
    await ctx.progress(0, f"reading {len(queues)} queues")

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
        await ctx.progress(100 * (index + 1) / max(1, len(queues)), f"{index + 1}/{len(queues)} queues")

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
