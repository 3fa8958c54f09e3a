"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and costs a task per request).

Order, outermost first: ``RequestContext`` (request id, one JSON log line per request) →
``BodyGuard`` (415 for non-JSON bodies, 413 over the size limit, enforced while streaming) →
``AccessGuard`` (per-address rate limit, then bearer token) → the FastAPI app.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer.problems import send_problem

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
#: Paths open without a token: probes and scrapes run without credentials. Everything else but the
#: dashboard's shells (below), the API description and Swagger UI included, needs the token when
#: API_TOKEN is set (the contract says so; a browser reaches /docs with the token through a proxy
#: or a header extension, or with auth off).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: The dashboard's HTML shells and static files hold no data (the browser fetches it from the API with
#: the token), so they open without one: the page is where the user types the token.
DASHBOARD = "/dashboard"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _is_dashboard(path: str) -> bool:
    return path == DASHBOARD or path.startswith(DASHBOARD + "/")


def _request_id(scope: Scope) -> str:
    return scope.get("state", {}).get("request_id", "")  # type: ignore[no-any-return]


class RequestContext:
    """Assigns the request id (a sane incoming X-Request-ID, else a new one), echoes it, and logs one
    line per request with user data as fields only (path, never the query string or headers)."""

    def __init__(self, app: ASGIApp, access_log: Callable[[dict[str, Any]], None]) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming.decode() if incoming and _REQUEST_ID.match(incoming) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.access_log(
                {
                    "request_id": rid,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0],
                }
            )


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the limit. An HTTPException, so FastAPI's body
    reader re-raises it (instead of calling it a parse error) and it becomes a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class BodyGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding") is not None
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1  # uvicorn refuses these first; this only guards other servers
            if declared > self.limit or declared < 0:
                await self._refuse(scope, send, 413 if declared > self.limit else 400)
                return
        has_body = chunked or (length is not None and length != b"0")
        if has_body and not _is_json(_header(scope, b"content-type")):
            await self._refuse(scope, send, 415)
            return

        received = 0
        limit = self.limit

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Reached only when something read the body outside FastAPI's reader.
            if started:
                raise
            await self._refuse(scope, tracking_send, 413)

    async def _refuse(self, scope: Scope, send: Send, status: int) -> None:
        detail = {
            413: f"the request body is larger than {self.limit} bytes",
            415: "the request body must be JSON (Content-Type: application/json)",
            400: "invalid Content-Length",
        }[status]
        slug = {413: "body-too-large", 415: "unsupported-media-type", 400: None}[status]
        await send_problem(send, status, detail, slug=slug, path=scope["path"], request_id=_request_id(scope))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AccessGuard:
    """A per-client rate limit (GCRA, one number per client), then the bearer token (constant-time).

    Clients are told apart by address only: a header is the client's to choose, so keying on it gave
    each made-up Authorization a fresh budget. The limit comes first so refused tokens are counted
    too (guessing is limited). ``X-Forwarded-For`` names the client only when the request comes from
    one of ``trusted_proxies``. The limit is per process: with N uvicorn workers a client gets up to
    N times the rate. At most ``max_clients`` are remembered.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        per_minute: int,
        max_clients: int = 10_000,
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.trusted_proxies = tuple(trusted_proxies)
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        # Allow a burst of up to a tenth of a minute's worth (at least 1) before spacing requests.
        self.burst = max(1.0, per_minute / 10) * self.interval
        self.max_clients = max_clients
        self._tat: OrderedDict[str, float] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if self.interval:
            wait = self._admit(self._client(scope), time.monotonic())
            if wait > 0:
                await send_problem(
                    send,
                    429,
                    "rate limit exceeded: slow down",
                    slug="rate-limited",
                    path=scope["path"],
                    request_id=_request_id(scope),
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
                return
        if self.token is not None and not _is_dashboard(scope["path"]):
            auth = _header(scope, b"authorization")
            presented = auth[7:].strip() if auth and auth[:7].lower() == b"bearer " else None
            if presented is None or not hmac.compare_digest(presented, self.token):
                challenge = 'Bearer realm="taskq"' + ("" if presented is None else ', error="invalid_token"')
                await send_problem(
                    send,
                    401,
                    "missing or invalid bearer token",
                    slug="unauthorized",
                    path=scope["path"],
                    request_id=_request_id(scope),
                    headers={"WWW-Authenticate": challenge},
                )
                return
        await self.app(scope, receive, send)

    def _client(self, scope: Scope) -> str:
        """The client's address: the peer's, or, when the peer is a trusted proxy, the nearest hop of
        X-Forwarded-For that is not one (proxies append, so the hops left of it are the client's to
        write and are never believed)."""
        peer: str = (scope.get("client") or ("?", 0))[0]
        if not self.trusted_proxies or not self._trusted(peer):
            return peer
        values = [bytes(v).decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
        hops: list[str] = [hop.strip() for value in values for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted_proxies)

    def _admit(self, client: str, now: float) -> float:
        """GCRA: 0 when admitted, else seconds until the request would conform."""
        tat = max(self._tat.get(client, now), now)
        allowed_at = tat - self.burst
        if now < allowed_at:
            return allowed_at - now
        self._tat[client] = tat + self.interval
        self._tat.move_to_end(client)
        if len(self._tat) > self.max_clients:
            self._tat.popitem(last=False)
        return 0.0
