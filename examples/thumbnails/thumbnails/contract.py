"""The contract of ``images.thumbnail``: its name, its arguments model and its options.

This module is what ``TASKQ_TASKS=thumbnails.contract`` loads in the producer *and* the worker. It imports
only pydantic and taskq, so the producer validates jobs with the very model the worker runs without
having Pillow installed; the handler is named by import path and resolved by the worker alone.
"""

from __future__ import annotations

from pydantic import Base64Bytes, Field

from taskq import CoreSettings, TaskArgs, Tasks

tasks = Tasks()

#: The image travels inside the job, base64-encoded. The bound is on the encoded text (what counts
#: against the job payload limit, MAX_PAYLOAD_BYTES) and leaves 8 KiB of the default limit for the
#: rest of the job: about 186 KiB of image.
MAX_IMAGE_BASE64 = CoreSettings.model_fields["max_payload_bytes"].default - 8 * 1024
MAX_WIDTH = 4096


class Thumbnail(TaskArgs):
    """An image (PNG, JPEG, GIF, WebP...) and the width of its thumbnail."""

    image: Base64Bytes = Field(
        min_length=1, max_length=MAX_IMAGE_BASE64, description="the image file, base64-encoded"
    )
    width: int = Field(
        ge=1, le=MAX_WIDTH, description="the thumbnail's width in pixels; the height keeps the ratio"
    )


thumbnail = tasks.declare(
    "images.thumbnail",
    Thumbnail,
    handler="thumbnails.work:make_thumbnail",
    description="Make a PNG thumbnail of an image; the PNG is the job's artifact",
    queue="images",
    # CPU-bound: a child process per job, killed at the timeout, so it never stalls the worker's loop.
    isolated=True,
    # A failure worth retrying is rare (a full disk, a killed child); a bad image is not retried at all.
    max_attempts=3,
    timeout_seconds=60,
)
