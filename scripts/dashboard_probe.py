"""Open the dashboard of a running stack through its published port, from the host, as a browser
would first receive it: the shell, every script and stylesheet it names, and its data behind the
token. ``make e2e`` runs it (the e2e container itself talks to producer:8000 on the project network,
which is not what a user's browser does).

    python3 scripts/dashboard_probe.py http://127.0.0.1:PORT   (API_TOKEN in the environment)

Standard library only: it runs on the host, outside the project's environment. Exit 0 when every
check holds, 1 with one line per failure otherwise.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import urllib.request

PAGES = ("/dashboard", "/dashboard/dead-letter", "/dashboard/enqueue")


def fetch(url: str, token: str | None = None) -> tuple[int, str, str]:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url)  # noqa: S310 (checked: http(s) only)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read().decode("utf-8", "replace")
            return response.status, response.headers.get("content-type", ""), body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), ""
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out: no answer at all
        return 0, f"no answer ({exc})", ""


def main(base: str) -> list[str]:
    failures: list[str] = []
    token = os.environ.get("API_TOKEN")
    assets: set[str] = set()
    for path in PAGES:
        status, kind, body = fetch(base + path)
        has_form = 'id="token-form"' in body
        if status != 200 or not kind.startswith("text/html") or not has_form:
            failures.append(f"{path}: {status} {kind}, token form: {has_form}")
        assets |= set(re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', body))
    if not assets:
        failures.append("the shell names no script or stylesheet")
    for asset in sorted(assets):
        status, _, _ = fetch(base + asset)
        if status != 200:
            failures.append(f"{asset}: {status}")
    status, kind, _ = fetch(base + "/queues")
    if status != 401 or "problem+json" not in kind:
        failures.append(f"/queues without the token: {status} {kind} (expected a 401 problem)")
    if token:
        status, _, body = fetch(base + "/queues", token)
        if status != 200 or not body.lstrip().startswith("["):
            failures.append(f"/queues with the token: {status}")
    return failures


if __name__ == "__main__":
    problems = main(sys.argv[1].rstrip("/"))
    for line in problems:
        print(f"dashboard probe: {line}", file=sys.stderr)
    print("dashboard probe: " + ("FAILED" if problems else "ok, through the published port"))
    sys.exit(1 if problems else 0)
