"""call_webhook: POST a JSON payload to a public http(s) URL, guarded against SSRF.

The guard resolves the host itself and refuses unless every address it resolves to is public
(``is_global``: not private, loopback, link-local incl. 169.254.169.254 metadata, CGNAT, ULA, reserved,
multicast). An IPv6 address that carries an IPv4 one is judged by that IPv4: IPv4-mapped, IPv4-translated,
NAT64 ``64:ff9b::/96`` and 6to4 ``2002::/16``; ranges where the IPv4 has no fixed place or that only
tunnel (local-use NAT64 ``64:ff9b:1::/48``, Teredo ``2001::/32``, IPv4-compatible ``::/96``) are refused
outright. Names are resolved through ``resolve_host`` (the seam tests replace). The request then
connects to the checked address (the URL's host is swapped for it; Host and TLS SNI keep the name), so
DNS cannot answer differently between the check and the connect. Redirects are followed by hand, each
target checked again. The response is read up to a cap. ``WEBHOOK_ALLOWLIST`` names hosts or CIDRs let
through anyway (local testing).

Failures: 5xx, 429, timeouts and network errors retry; other 4xx, refused targets and oversized
responses are permanent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import httpx

from taskq import NonRetryableError
from taskq.builtin_tasks import CallWebhookArgs
from worker.context import JobContext
from worker.settings import Allowlist

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(NonRetryableError):
    """The target is not a public address (SSRF guard), or not http(s)."""


class WebhookRejected(NonRetryableError):
    """The receiver answered with a 4xx (other than 429), or the response is too large."""


class WebhookUnavailable(RuntimeError):
    """The receiver answered 5xx or 429, or could not be reached in time: retried."""


_V6 = ipaddress.IPv6Network

#: IPv6 ranges whose low 32 bits are the IPv4 address the packets end up at: IPv4-mapped (a dual-stack
#: socket connects to the IPv4), IPv4-translated (SIIT) and the NAT64 well-known prefix (RFC 6052), whose
#: translator forwards to the embedded IPv4: 64:ff9b::a9fe:a9fe is the metadata service 169.254.169.254.
_EMBEDS_IPV4_LOW32 = (_V6("::ffff:0:0/96"), _V6("::ffff:0:0:0/96"), _V6("64:ff9b::/96"))

#: Refused whatever they carry. Local-use NAT64 (RFC 8215): the operator's prefix length decides where
#: the IPv4 sits, so it cannot be read back reliably. Teredo only tunnels, through a relay, to a client
#: behind NAT. IPv4-compatible ::/96 is deprecated (RFC 4291) and holds :: and ::1.
_REFUSED_V6 = (_V6("64:ff9b:1::/48"), _V6("2001::/32"), _V6("::/96"))


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _REFUSED_V6):
            return False
        if any(ip in net for net in _EMBEDS_IPV4_LOW32):
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
        if ip.sixtofour is not None and not is_public(ip.sixtofour):
            return False
        # Python 3.11's is_global is "not private" for IPv6, so reserved (e.g. the rest of ::/8) and
        # deprecated site-local fec0::/10 would pass: only real global unicast does.
        if ip.is_reserved or ip.is_site_local:
            return False
    return ip.is_global and not ip.is_multicast


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver, off the event loop)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WebhookUnavailable(f"cannot resolve {host!r}: {exc.strerror}") from None
    # A link-local IPv6 answer comes with its zone ("fe80::1%eth0"): the address is what is judged.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Target:
    url: httpx.URL  # the URL with its host replaced by the checked address
    host: str  # the original host name (Host header, TLS SNI)


async def resolve_target(url: httpx.URL, allow: Allowlist) -> Target:
    if url.scheme not in ("http", "https"):
        raise WebhookRefused(f"scheme {url.scheme!r} is not allowed")
    host = url.host
    if not host:
        raise WebhookRefused("the URL has no host")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        addresses = await resolve_host(host, port)
        if not addresses:
            raise WebhookUnavailable(f"{host!r} resolved to no address")
    host_allowed = allow.allows_host(host)
    for ip in addresses:
        if not (host_allowed or allow.allows_address(str(ip)) or is_public(ip)):
            # Refuse outright when any answer is private: a mixed answer is a rebinding attempt.
            raise WebhookRefused(f"{host!r} resolves to a non-public address ({ip})")
    pinned = addresses[0]
    return Target(url.copy_with(host=str(pinned)), host)


async def _post(
    client: httpx.AsyncClient, target: Target, method: str, body: bytes | None, timeout: float, cap: int
) -> tuple[httpx.Response, bytes]:
    netloc = target.host if target.url.port is None else f"{target.host}:{target.url.port}"
    headers = {"Host": netloc, "User-Agent": "taskq-webhook/1"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = client.build_request(
        method,
        target.url,
        content=body,
        headers=headers,
        timeout=timeout,
        extensions={"sni_hostname": target.host},
    )
    response = await client.send(request, stream=True)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > cap:
                raise WebhookRejected(f"response larger than {cap} bytes")
            chunks.append(chunk)
    finally:
        await response.aclose()
    return response, b"".join(chunks)


def http_client() -> httpx.AsyncClient:
    # No keep-alive pooling: connections are opened to a pinned address for one named host, and must
    # never be reused for another host that shares the address. No environment proxies either.
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0, max_connections=100),
    )


async def call_webhook(args: CallWebhookArgs, ctx: JobContext) -> Any:
    settings = ctx.settings
    client = ctx.resources.get("http")
    if not isinstance(client, httpx.AsyncClient):
        client = ctx.resources["http"] = http_client()
    allow = settings.allowlist()
    url = httpx.URL(str(args.url))
    method = "POST"
    body: bytes | None = httpx.Request("POST", "http://x", json=args.payload).content
    for _ in range(settings.webhook_max_redirects + 1):
        target = await resolve_target(url, allow)
        try:
            response, content = await _post(
                client, target, method, body, args.timeout_seconds, settings.webhook_max_response_bytes
            )
        except httpx.TimeoutException:
            raise WebhookUnavailable(f"no answer within {args.timeout_seconds}s") from None
        except httpx.TransportError as exc:
            raise WebhookUnavailable(f"network error: {type(exc).__name__}") from None
        if response.is_redirect and "location" in response.headers:
            url = url.join(response.headers["location"])
            if response.status_code in (301, 302, 303):
                method, body = "GET", None
            continue
        status = response.status_code
        if status >= 500 or status == 429:
            raise WebhookUnavailable(f"receiver answered {status}")
        if status >= 400:
            raise WebhookRejected(f"receiver answered {status}")
        return {
            "status": status,
            "bytes": len(content),
            "content_type": response.headers.get("content-type"),
            "body": content[:2048].decode("utf-8", "replace"),
        }
    raise WebhookRejected(f"more than {settings.webhook_max_redirects} redirects")
