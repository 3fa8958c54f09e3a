"""An SMTP sink that remembers what it received and serves it as JSON, so tests can read the mail.

    python -m e2e.smtp_sink [--host 0.0.0.0] [--smtp-port 1025] [--http-port 8025]
    python -m e2e.smtp_sink check        # healthcheck: exit 0 iff both ports answer

SMTP on ``--smtp-port`` accepts everything (aiosmtpd). HTTP on ``--http-port``:
``GET /messages`` lists the messages received, oldest first; ``DELETE /messages`` forgets them;
``GET /healthz`` answers 200. One line per received message goes to stdout (``make dev`` shows it).

A recipient whose local part carries ``+delay<ms>`` (``slow+delay2000@example.com``) makes the sink
hold the DATA reply for that long: a real, countable email job that takes a known time, which the
graceful-stop scenarios need. The message is recorded when the reply is sent, i.e. when the worker
is told it was delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `check` (the healthcheck) runs often: it must not pay for importing aiosmtpd
    from aiosmtpd.smtp import SMTP, Envelope, Session

_DELAY = re.compile(r"\+delay(\d{1,6})@")
_MAX_REQUEST = 8192


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    body: str
    message_id: str
    received_at: float


class Mailbox:
    """The aiosmtpd handler: records each message after its optional delay."""

    def __init__(self) -> None:
        self.messages: list[Received] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        rcpts = [str(r) for r in envelope.rcpt_tos]
        delays = [int(m.group(1)) for r in rcpts if (m := _DELAY.search(r))]
        if delays:
            await asyncio.sleep(max(delays) / 1000)
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        body_part = parsed.get_body(preferencelist=("plain",))
        body = str(body_part.get_content()).replace("\r\n", "\n") if body_part is not None else ""
        record = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=rcpts,
            subject=str(parsed.get("Subject", "")),
            body=body,
            message_id=str(parsed.get("Message-ID", "")),
            received_at=time.time(),
        )
        self.messages.append(record)
        print(
            json.dumps({"event": "mail", "to": rcpts, "subject": record.subject, "bytes": len(raw)}),
            flush=True,
        )
        return "250 Message accepted for delivery"


async def _respond(writer: asyncio.StreamWriter, status: str, payload: Any) -> None:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


def _http_handler(mailbox: Mailbox) -> Any:
    """A deliberately tiny HTTP/1.1 server (one request per connection): no web framework needed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        method, _, rest = head[:_MAX_REQUEST].decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if path == "/healthz" and method == "GET":
            await _respond(writer, "200 OK", {"status": "ok"})
        elif path == "/messages" and method == "GET":
            await _respond(writer, "200 OK", [asdict(m) for m in mailbox.messages])
        elif path == "/messages" and method == "DELETE":
            mailbox.messages.clear()
            await _respond(writer, "200 OK", {"deleted": True})
        else:
            await _respond(writer, "404 Not Found", {"detail": "not found"})

    return handle


async def serve(host: str, smtp_port: int, http_port: int) -> None:
    from aiosmtpd.smtp import SMTP

    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    smtp_server = await loop.create_server(
        lambda: SMTP(mailbox, hostname="smtp-sink", data_size_limit=10 * 1024 * 1024), host, smtp_port
    )
    http_server = await asyncio.start_server(_http_handler(mailbox), host, http_port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # as PID 1 nothing else would end it on `docker stop`
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps({"event": "listening", "smtp": smtp_port, "http": http_port}), flush=True)
    async with smtp_server, http_server:
        await stop.wait()


def check(smtp_port: int, http_port: int) -> int:
    """Healthcheck: the SMTP banner is 220 and the HTTP side answers."""
    try:
        with socket.create_connection(("127.0.0.1", smtp_port), timeout=2) as sock:
            if not sock.recv(64).startswith(b"220"):
                return 1
        with socket.create_connection(("127.0.0.1", http_port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: sink\r\n\r\n")
            return 0 if sock.recv(64).startswith(b"HTTP/1.1 200") else 1
    except OSError:
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.smtp_sink", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", choices=["serve", "check"], default="serve")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.smtp_port, args.http_port)
    asyncio.run(serve(args.host, args.smtp_port, args.http_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
