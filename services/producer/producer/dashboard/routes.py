"""/dashboard routes: one HTML shell per page, and the static files (an allow-list read at import).

Pages are a shell with empty landmarks; the page's script fills them from the API. Nothing from the
request or from Redis is written into the HTML, so there is nothing to escape server-side, and the
Content-Security-Policy forbids inline script: an injected tag could not run even if one slipped in.
"""

from __future__ import annotations

from importlib import resources
from string import Template
from typing import Annotated

from fastapi import APIRouter, Path, Response

from producer.problems import ProblemError
from producer.schemas import JOB_ID_PATTERN

router = APIRouter(prefix="/dashboard", include_in_schema=False)

_FILES = resources.files(__package__)

#: No inline script or style, nothing from another origin; blob: is the artifact download.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time: an upgraded producer must not run yesterday's scripts against today's API.
    "Cache-Control": "no-cache",
}
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
#: name -> (bytes, content type), only .js and .css directly in static/ (no path ever reaches the disk).
STATIC: dict[str, tuple[bytes, str]] = {
    entry.name: (entry.read_bytes(), _TYPES[entry.name[entry.name.rindex(".") :]])
    for entry in _FILES.joinpath("static").iterdir()
    if entry.is_file() and entry.name.endswith(tuple(_TYPES))
}
_SHELL = Template(_FILES.joinpath("templates", "shell.html").read_text(encoding="utf-8"))
#: page -> (title, nav key, template of <main>)
_PAGES = {
    "overview": ("Overview", "overview", "overview.html"),
    "job": ("Job", "overview", "job.html"),
    "dead": ("Dead letters", "dead", "dead.html"),
    "enqueue": ("Enqueue a job", "enqueue", "enqueue.html"),
}
_NAV = (("overview", "/dashboard", "Overview"), ("dead", "/dashboard/dead-letter", "Dead letters"),
        ("enqueue", "/dashboard/enqueue", "Enqueue"))  # fmt: skip


def _render(page: str) -> bytes:
    title, current, main = _PAGES[page]
    nav = "\n".join(
        f'<li><a href="{href}"{" aria-current=page" if key == current else ""}>{label}</a></li>'
        for key, href, label in _NAV
    )
    body = _FILES.joinpath("templates", main).read_text(encoding="utf-8")
    return _SHELL.substitute(title=title, page=page, nav=nav, main=body).encode()


_RENDERED = {page: _render(page) for page in _PAGES}


def _html(page: str) -> Response:
    return Response(_RENDERED[page], media_type="text/html; charset=utf-8", headers=_SECURITY_HEADERS)


@router.get("")
async def overview() -> Response:
    return _html("overview")


@router.get("/jobs/{job_id}")
async def job_page(job_id: Annotated[str, Path(pattern=JOB_ID_PATTERN)]) -> Response:
    # The id is checked but not used: the page's script reads it from the address bar.
    return _html("job")


@router.get("/dead-letter")
async def dead_letters() -> Response:
    return _html("dead")


@router.get("/enqueue")
async def enqueue() -> Response:
    return _html("enqueue")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    try:
        content, media_type = STATIC[name]
    except KeyError:
        raise ProblemError(404, f"no dashboard asset named {name!r}", slug="not-found") from None
    return Response(content, media_type=media_type, headers=_SECURITY_HEADERS)
