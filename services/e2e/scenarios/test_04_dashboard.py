"""Scenario 9: the dashboard is served by the producer of the stack, its assets from the image.

No browser in this container: the page is checked as a browser would receive it (the shell, each
script and stylesheet it names, the CSP), and its data stays behind the token. The browser tests
(tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import re

import requests

from e2e.harness import Api, env

PAGES = ("/dashboard", "/dashboard/dead-letter", "/dashboard/enqueue")


def test_9a_dashboard_shell_and_assets_are_served_with_a_strict_csp(api: Api) -> None:
    anonymous = requests.Session()  # the shell and assets need no token: the page asks for it
    assets: set[str] = set()
    for path in PAGES:
        page = anonymous.get(api.base_url + path, timeout=10)
        assert page.status_code == 200, (path, page.status_code, page.text[:200])
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp, csp
        assert "script-src 'self'" in csp, csp
        assert "unsafe-inline" not in csp
        assert 'id="token-form"' in page.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "an inline script in the shell"
        assets |= set(re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', page.text))
    assert {"/dashboard/static/main.js", "/dashboard/static/dashboard.css"} <= assets
    # The entry module imports the others: each one it names is served too.
    main = anonymous.get(api.base_url + "/dashboard/static/main.js", timeout=10).text
    assets |= {f"/dashboard/static/{name}" for name in re.findall(r'from "\./([a-z]+\.js)"', main)}
    for path in sorted(assets):
        asset = anonymous.get(api.base_url + path, timeout=10)
        assert asset.status_code == 200, path
        kind = "text/css" if path.endswith(".css") else "text/javascript"
        assert asset.headers["content-type"].startswith(kind), (path, asset.headers["content-type"])
        assert asset.headers["x-content-type-options"] == "nosniff"


def test_9b_dashboard_data_needs_the_token(api: Api) -> None:
    if not env("API_TOKEN", ""):
        return  # a stack without a token serves its data to anyone, dashboard or not
    anonymous = requests.Session()
    for path in ("/queues", "/workers", "/tasks", "/dead-letter?queue=default"):
        assert anonymous.get(api.base_url + path, timeout=10).status_code == 401, path
        assert api.request("GET", path).status_code == 200, path
