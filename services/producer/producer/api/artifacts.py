"""/jobs/{id}/artifact: the file a job produced (generate_report's CSV, a user task's image), served
from REPORTS_DIR.

The worker names the file in the job's result (``{"artifact": "<name>", "content_type": ...}``).
That name comes from Redis, so it is trusted only as far as it is checked: a plain file name (no
directory part), resolved inside REPORTS_DIR, with a content type from a short allow-list.

Workers delete report files ``REPORT_TTL_SECONDS`` after they were written; from then on (counted
from the job's end, which follows the write by the ack's round trip) the artifact is 410 Gone.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from producer.deps import JobId, SettingsDep, TaskqDep
from producer.openapi import COMMON, problems
from producer.problems import ProblemError
from taskq import JobNotFound, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,200}$")
#: Served as named; any other type a handler gave is served as application/octet-stream (a download),
#: so a task's file can never become a page on the API's origin (no text/html, no image/svg+xml).
_TYPES = {
    "text/csv": "text/csv; charset=utf-8",
    "text/plain": "text/plain; charset=utf-8",
    "application/json": "application/json",
    "application/pdf": "application/pdf",
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/webp": "image/webp",
    "image/gif": "image/gif",
}


def _locate(directory: Path, name: str) -> Path | None:
    """The file, if it exists right inside ``directory`` (a link out of it does not count)."""
    root = directory.resolve()
    path = (root / name).resolve()
    return path if path.parent == root and path.is_file() else None


@router.get(
    "/{job_id}/artifact",
    summary="Download the file a job produced (e.g. generate_report's CSV)",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The file"},
        **problems(404, 409, 410, 422, *COMMON),
    },
)
async def get_artifact(job_id: JobId, taskq: TaskqDep, settings: SettingsDep) -> FileResponse:
    """404 when the job is unknown or produced no file (or it was removed); 409 while it has not
    succeeded yet; 410 once the report retention (``REPORT_TTL_SECONDS``) has passed."""
    job = await taskq.get_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    if job.status is not JobStatus.SUCCEEDED:
        raise ProblemError(
            409,
            f"job {job_id} is {job.status.value}: it has no artifact until it succeeds",
            slug="no-artifact-yet",
        )
    result = job.result if isinstance(job.result, dict) else {}
    name = result.get("artifact")
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise ProblemError(404, f"job {job_id} produced no artifact", slug="no-artifact")
    ttl = settings.report_ttl_seconds
    if job.finished_at is not None and job.finished_at.timestamp() + ttl <= time.time():
        raise ProblemError(
            410,
            f"the artifact of job {job_id} was deleted: reports are kept {ttl} s",
            slug="artifact-expired",
        )
    path = await asyncio.to_thread(_locate, Path(settings.reports_dir), name)
    if path is None:
        raise ProblemError(404, f"the artifact of job {job_id} is gone", slug="artifact-gone")
    media_type = _TYPES.get(str(result.get("content_type")), "application/octet-stream")
    return FileResponse(path, media_type=media_type, filename=f"{job.task}-{job_id}{path.suffix}")
