"""The handler of ``images.thumbnail`` (declared in ``thumbnails.contract``). Imported by the worker
only: it is the one module that needs Pillow.

It runs isolated (a child process per job): decoding an image is CPU-bound, and a hostile one must not
stall the worker's event loop or outlive its timeout.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from taskq import JobContext, NonRetryableError
from thumbnails.contract import Thumbnail

#: Refused before decoding: at 4 bytes a pixel, 16 Mpx is 64 MiB of memory, well inside the worker
#: container's limit. A small file can declare a huge image (a "decompression bomb").
MAX_SOURCE_PIXELS = 4096 * 4096
#: Pillow's errors for an image file that is damaged or cut short: SyntaxError is what its PNG reader
#: raises on a broken chunk.
_UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class NotAnImage(NonRetryableError):
    """The job's bytes are not an image Pillow can read: no retry can fix that, so the job is
    dead-lettered at once (reason ``non_retryable``) with this message."""


def make_thumbnail(args: Thumbnail, ctx: JobContext) -> dict[str, int | str]:
    """Scale the image to ``args.width`` pixels wide (the height keeps the aspect ratio), store it as
    a PNG artifact, and return its size with the artifact's name."""
    thumb = _scaled(args.image, args.width)
    out = io.BytesIO()
    thumb.save(out, format="PNG", optimize=True)
    saved = ctx.save_artifact(out.getvalue(), content_type="image/png", suffix=".png")
    return {"width": thumb.width, "height": thumb.height, **saved}


def _scaled(data: bytes, width: int) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as source:
            pixels = source.width * source.height
            if pixels > MAX_SOURCE_PIXELS:
                raise NotAnImage(
                    f"the image is {source.width}x{source.height} pixels: more than the {MAX_SOURCE_PIXELS}"
                    " this task reads"
                )
            source.load()
            height = max(1, round(source.height * width / source.width))
            # PNG keeps RGB(A) and greyscale as they are; anything else (CMYK, palettes) becomes RGBA.
            image = source if source.mode in ("RGB", "RGBA", "L", "LA") else source.convert("RGBA")
            return image.resize((width, height), Image.Resampling.LANCZOS)
    except UnidentifiedImageError:
        raise NotAnImage(
            "the job's image is not in a format Pillow reads (PNG, JPEG, GIF, WebP...)"
        ) from None
    except _UNREADABLE as exc:
        raise NotAnImage(f"the job's image is damaged or truncated: {type(exc).__name__}: {exc}") from exc
