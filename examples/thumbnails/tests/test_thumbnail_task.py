"""The example task as its team would test it: the handler on images made here (nothing fetched), the
contract's bounds, and the contract loading where Pillow is absent (the producer image)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from PIL import Image
from pydantic import ValidationError

import thumbnails
from taskq import CoreSettings, JobContext, NonRetryableError, TaskRegistry
from thumbnails.contract import MAX_IMAGE_BASE64, MAX_WIDTH, Thumbnail, thumbnail
from thumbnails.work import MAX_SOURCE_PIXELS, make_thumbnail
from worker.artifacts import save_artifact


@dataclass
class ArtifactsOnly:
    """The part of the worker's context this handler uses, writing where the worker would."""

    directory: Path
    job_id: str = "job-1"

    def save_artifact(self, data: bytes, *, content_type: str, suffix: str = "") -> dict[str, str]:
        return save_artifact(self.directory, self.job_id, data, content_type, suffix)


def _image(size: tuple[int, int], mode: str = "RGB", fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color="red" if mode == "RGB" else 1).save(out, format=fmt)
    return out.getvalue()


def _job(data: bytes, width: int) -> Thumbnail:
    """The args as the worker gets them: validated from the JSON a producer sent."""
    return Thumbnail.model_validate({"image": base64.b64encode(data).decode(), "width": width})


@pytest.mark.parametrize(("source", "fmt", "width", "expected"), [
    ((400, 300), "PNG", 100, (100, 75)),
    ((300, 400), "JPEG", 90, (90, 120)),
    ((10, 7), "GIF", 40, (40, 28)),  # a palette image, and wider than the source
])  # fmt: skip
def test_thumbnail_is_a_png_of_the_width_asked_with_the_aspect_kept(
    tmp_path: Path, source: tuple[int, int], fmt: str, width: int, expected: tuple[int, int]
) -> None:
    ctx = ArtifactsOnly(tmp_path)
    result = make_thumbnail(_job(_image(source, fmt=fmt), width), cast(JobContext, ctx))
    assert result == {
        "width": expected[0],
        "height": expected[1],
        "artifact": "job-1.png",
        "content_type": "image/png",
    }
    with Image.open(tmp_path / "job-1.png") as made:
        assert (made.format, made.size) == ("PNG", expected)


@pytest.mark.parametrize("data", [b"not an image at all", _image((50, 50))[:60]], ids=["junk", "truncated"])
def test_a_corrupt_image_is_a_non_retryable_error_that_says_so(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(NonRetryableError, match=r"the job's image is (not in a format|damaged)"):
        make_thumbnail(_job(data, 64), cast(JobContext, ArtifactsOnly(tmp_path)))
    assert not list(tmp_path.iterdir()), "nothing is stored for a bad image"


def test_an_image_declaring_too_many_pixels_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    side = int(MAX_SOURCE_PIXELS**0.5) + 1  # a 1-bit image this big compresses to a few KiB
    with pytest.raises(NonRetryableError, match="pixels"):
        make_thumbnail(_job(_image((side, side), mode="1"), 64), cast(JobContext, ArtifactsOnly(tmp_path)))


@pytest.mark.parametrize("args", [
    {"image": "", "width": 10},
    {"image": "bm90IGJhc2U2NA", "width": 10},  # base64 without its padding
    {"image": "aGk=", "width": 0},
    {"image": "aGk=", "width": MAX_WIDTH + 1},
    {"image": "A" * (MAX_IMAGE_BASE64 + 4), "width": 10},
    {"image": "aGk=", "width": 10, "height": 10},
])  # fmt: skip
def test_the_contract_refuses_what_the_worker_could_not_run(args: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        thumbnail.validate(args)


def test_the_largest_image_the_contract_accepts_fits_the_default_job_payload() -> None:
    largest = thumbnail.validate({"image": "A" * MAX_IMAGE_BASE64, "width": MAX_WIDTH})
    body = json.dumps({"task": thumbnail.name, "args": largest.model_dump(mode="json"), "queue": "images"})
    assert len(body.encode()) < CoreSettings.model_fields["max_payload_bytes"].default


def test_the_handler_resolves_as_an_isolated_process_task() -> None:
    handler = thumbnail.resolve()
    assert (handler.mode, handler.ref) == ("process", "thumbnails.work:make_thumbnail")


def test_the_contract_loads_where_pillow_is_not_installed() -> None:
    # The producer image has no Pillow: TASKQ_TASKS=thumbnails.contract must load there all the same.
    code = (
        "import sys; sys.modules['PIL'] = None\n"  # any `import PIL` now raises ImportError
        "from taskq import TaskRegistry\n"
        "registry = TaskRegistry.load('thumbnails.contract')\n"
        "pil = sys.modules.get('PIL') is not None\n"
        "print(registry.get('images.thumbnail').queue, pil)\n"
    )
    project = Path(thumbnails.__file__).resolve().parents[1]  # the example's root: thumbnails/ is under it
    env = {**os.environ, "PYTHONPATH": str(project)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["images", "False"]


def test_the_registry_lists_it_beside_the_builtins() -> None:
    registry = TaskRegistry.load("thumbnails.contract")
    assert registry.origin("images.thumbnail") == "thumbnails.contract"
    assert "send_email" in registry
