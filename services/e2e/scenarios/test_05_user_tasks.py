"""Scenario 10: a user's own task shipped with Docker (examples/thumbnails), two example workers.

``make e2e`` runs this file in its second phase, after it has swapped the producer and the workers for
the example's images (``-f examples/thumbnails/compose.yaml --scale worker=2``) and set
``E2E_THUMBNAILS=1``; in the first phase, on taskq's own images, it is skipped. Everything goes
through the HTTP API as a client would send it; the image is made here (nothing is fetched), and the
PNG that comes back is read here without Pillow (the runner image does not have it).
"""

from __future__ import annotations

import base64
import os
import struct
import zlib
from datetime import datetime
from typing import Any

import pytest
from docker.models.containers import Container

from e2e.harness import Api, Fleet, wait_for

pytestmark = pytest.mark.skipif(
    not os.environ.get("E2E_THUMBNAILS"),
    reason="runs in make e2e's second phase, on the examples/thumbnails images (E2E_THUMBNAILS=1)",
)

TASK = "images.thumbnail"
QUEUE = "images"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(width: int, height: int) -> bytes:
    """An 8-bit RGB PNG with a gradient (so the scaling has something to average), by hand."""
    rows = b"".join(
        b"\x00" + bytes(channel for x in range(width) for channel in (x % 256, y % 256, (x + y) % 256))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, no interlace
    return (
        PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR (the first chunk, right after the signature)."""
    assert data[:8] == PNG_SIGNATURE, f"not a PNG: starts with {data[:8]!r}"
    assert data[12:16] == b"IHDR", f"the first chunk is {data[12:16]!r}, not IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def submit_thumbnail(api: Api, image: bytes, width: int) -> str:
    return api.submit(TASK, {"image": base64.b64encode(image).decode(), "width": width})


def test_10a_a_thumbnail_job_returns_a_png_of_the_requested_width(api: Api, measured: list[str]) -> None:
    tasks = api.request("GET", "/tasks")
    assert tasks.status_code == 200, tasks.text
    assert TASK in {task["name"] for task in tasks.json()}, "the producer does not list the example's task"

    job_id = submit_thumbnail(api, make_png(320, 200), 120)
    job = api.wait_finished([job_id], timeout=60)[job_id]
    assert job["status"] == "succeeded", job
    assert job["queue"] == QUEUE
    assert {k: job["result"][k] for k in ("width", "height", "content_type")} == {
        "width": 120,
        "height": 75,  # 200 * 120 / 320: the aspect ratio kept
        "content_type": "image/png",
    }, job["result"]

    artifact = api.request("GET", f"/jobs/{job_id}/artifact")
    assert artifact.status_code == 200, artifact.text
    assert artifact.headers["content-type"] == "image/png"
    assert png_size(artifact.content) == (120, 75)
    run = (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
    ).total_seconds()
    measured.append(f"scenario 10a: a 320x200 PNG thumbnailed to 120x75 in an isolated child: {run:.2f} s")


def test_10b_a_corrupt_image_is_dead_lettered_at_once_as_non_retryable(api: Api) -> None:
    job_id = submit_thumbnail(api, make_png(64, 64)[:70], 32)  # the header, then the data cut short
    job = api.wait_finished([job_id], timeout=60)[job_id]
    assert job["status"] == "failed", job
    assert job["attempts"] == 1, f"a bad image was retried: {job}"
    assert job["error"]["reason"] == "non_retryable", job["error"]
    assert job["error"]["type"] == "NotAnImage"
    assert "image" in job["error"]["message"]

    dead = api.request("GET", "/dead-letter", params={"queue": QUEUE})
    assert dead.status_code == 200, dead.text
    assert job_id in {item["id"] for item in dead.json()["items"]}


def test_10c_both_example_workers_are_live_and_share_a_burst(api: Api, fleet: Fleet) -> None:
    containers = [c for c in fleet.containers("worker") if fleet.state(c)["Running"]]
    assert len(containers) == 2, [c.name for c in containers]
    images = {c.attrs["Config"]["Image"] for c in containers}
    assert all("thumbnails-worker" in image for image in images), f"not the example's image: {images}"

    def serving() -> list[dict[str, Any]] | None:
        live = [w for w in api.workers() if QUEUE in w["queues"]]
        return live if len(live) == 2 else None

    workers = wait_for(serving, timeout=30, what="2 workers serving the images queue in GET /workers")
    assert {fleet.container_of(w["id"]).id for w in workers} == {c.id for c in containers}
    for worker in workers:
        if "tasks" in worker:  # listed per worker once the registry reports it
            assert TASK in worker["tasks"], worker

    # compose.test.yaml runs one job per worker at a time: a burst of four must use both workers.
    ids = [submit_thumbnail(api, make_png(200, 100), 50) for _ in range(4)]
    jobs = api.wait_finished(ids, timeout=90)
    assert all(job["status"] == "succeeded" for job in jobs.values()), jobs
    assert {job["worker"] for job in jobs.values()} == {w["id"] for w in workers}


def _run(container: Container, code: str) -> tuple[int | None, str]:
    exit_code, output = container.exec_run(["python3", "-c", code])
    assert isinstance(output, bytes)
    return exit_code, output.decode(errors="replace")[-400:]


def test_10d_only_the_worker_image_has_pillow(fleet: Fleet) -> None:
    # The point of the contract/handler split: the producer validates with the contract alone.
    producer = fleet.one("producer")
    assert _run(producer, "import thumbnails.contract")[0] == 0
    code, output = _run(producer, "import PIL")
    assert code != 0, "the producer image has Pillow"
    assert "No module named 'PIL'" in output
    for worker in fleet.containers("worker"):
        code, output = _run(worker, "import PIL, thumbnails.work")
        assert code == 0, output
