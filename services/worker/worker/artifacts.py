"""A job's artifact: one file in the shared artifacts directory (``REPORTS_DIR``), named after the job,
served by the producer at ``GET /jobs/{id}/artifact``. The job's result names it."""

from __future__ import annotations

import mimetypes
import os
import re
from pathlib import Path

_SUFFIX = re.compile(r"^(\.[A-Za-z0-9]{1,10})?$")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+\-]*/[a-z0-9][a-z0-9.+\-]*$")


def save_artifact(
    directory: Path, job_id: str, data: bytes, content_type: str, suffix: str = ""
) -> dict[str, str]:
    """Write ``data`` as the job's artifact (atomically: a reader never sees half a file) and return
    what the handler puts into its result: ``{"artifact": name, "content_type": content_type}``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("an artifact is bytes")
    if not _CONTENT_TYPE.match(content_type):
        raise ValueError(f"content_type {content_type!r} is not a media type such as 'image/png'")
    suffix = suffix or mimetypes.guess_extension(content_type) or ""
    if not _SUFFIX.match(suffix):
        raise ValueError(f"suffix {suffix!r} is not '.' and 1-10 letters or digits")
    name = f"{job_id}{suffix}"
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    tmp.write_bytes(bytes(data))
    tmp.replace(directory / name)
    return {"artifact": name, "content_type": content_type}
