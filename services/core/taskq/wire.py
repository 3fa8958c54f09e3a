"""A lean Redis connection for the one path where client CPU *is* the latency: an idle worker's wake-up.

redis-py's asyncio client is built for generality (connection pools, retries, response callbacks,
a StreamReader, a timeout context per reply). On the wake-up path (a blocking BZPOPMIN with the
claim pipelined behind it) all of that runs on a cold cache after the worker has been idle, and it
cost ~0.25 ms of the enqueue->claim interval on this VM (bench/core.py; the bare pop is ~0.3 ms).
``Wire`` is one connection that speaks RESP2 through an ``asyncio.Protocol`` with the hiredis
reader: a call packs its commands in C, writes them, and awaits one future that the protocol
resolves when the last reply is parsed. Replies come back in order, so concurrent calls pipeline.

What it keeps from a real client: ``redis://``, ``rediss://`` (TLS, with redis-py's ``ssl_*`` URL
options) and ``unix://`` URLs with username/password and db; a connect timeout; error replies as
redis-py's exception types (so ``redis_errors`` translates them as for every other call); a lost
connection fails its calls with ``ConnectionError`` and the next call reconnects. A call that times
out or is cancelled drops the connection, because its replies are still due and would be read as
the next call's.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import struct
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, Self, cast

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from taskq.settings import CoreSettings

_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def _typed(error: ResponseError) -> ResponseError:
    """NOSCRIPT gets its own type (the caller reloads scripts on it); the rest stay ResponseError,
    which ``taskq.queue.redis_errors`` reads by their text (OOM, NOAUTH, LOADING, ...)."""
    text = str(error)
    return NoScriptError(text) if text.startswith("NOSCRIPT") else error


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=ResponseError)
        #: (future, replies expected, replies so far) per call, in the order the calls were written
        self.calls: deque[tuple[asyncio.Future[list[Any]], int, list[Any]]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        calls = self.calls
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RedisConnectionError(f"Redis sent bytes that are not RESP: {exc}"))
                return
            if reply is False:
                return
            if not calls:  # a reply nobody asked for: the stream is out of step
                self.fail(RedisConnectionError("Redis sent a reply that no call was waiting for"))
                return
            future, expected, replies = calls[0]
            replies.append(_typed(reply) if isinstance(reply, ResponseError) else reply)
            if len(replies) == expected:
                calls.popleft()
                if not future.done():
                    future.set_result(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def fail(self, error: Exception) -> None:
        """The connection is unusable: close it and fail every call still waiting."""
        if self.lost is None:
            self.lost = error
        if self.transport is not None:
            self.transport.abort()
        while self.calls:
            future, _, _ = self.calls.popleft()
            if not future.done():
                future.set_exception(error)

    @property
    def usable(self) -> bool:
        return self.lost is None and self.transport is not None and not self.transport.is_closing()


class _Endpoint:
    """What both wires share: where Redis is, how to greet it, how long to wait for it."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 2.0,
        command_timeout: float | None = None,
        client_name: str = "taskq",
    ) -> None:
        self.options: dict[str, Any] = dict(parse_url(url))
        self.connect_timeout = connect_timeout
        #: Seconds a call may wait for its replies when it names no timeout (None: no bound).
        self.command_timeout = command_timeout
        self.client_name = client_name
        #: Redis's id for the current connection (CLIENT ID), for CLIENT UNBLOCK from another one.
        self.client_id: int | None = None

    @classmethod
    def from_settings(cls, settings: CoreSettings, *, client_name: str = "taskq") -> Self:
        return cls(
            settings.redis_dsn(),
            connect_timeout=settings.redis_connect_timeout,
            command_timeout=settings.redis_socket_timeout,
            client_name=client_name,
        )

    def _tls(self) -> ssl.SSLContext | None:
        o = self.options
        if not issubclass(o.get("connection_class", object), SSLConnection):
            return None
        context = ssl.create_default_context(cafile=o.get("ssl_ca_certs"))
        reqs = o.get("ssl_cert_reqs", "required")
        verify = _CERT_REQS[reqs.lower()] if isinstance(reqs, str) else reqs
        check = o.get("ssl_check_hostname", verify != ssl.CERT_NONE)
        # check_hostname first: Python refuses CERT_NONE while it is on.
        context.check_hostname = verify != ssl.CERT_NONE and check not in (False, "False", "false", "0")
        context.verify_mode = verify
        if o.get("ssl_certfile"):
            context.load_cert_chain(o["ssl_certfile"], o.get("ssl_keyfile"))
        return context

    def _handshake(self) -> list[list[Any]]:
        o = self.options
        commands: list[list[Any]] = []
        if o.get("password") is not None:
            user = o.get("username")
            commands.append(["AUTH", user, o["password"]] if user else ["AUTH", o["password"]])
        if int(o.get("db", 0) or 0):
            commands.append(["SELECT", int(o["db"])])
        commands.append(["CLIENT", "SETNAME", self.client_name])
        commands.append(["CLIENT", "ID"])
        return commands

    def _greeted(self, replies: list[Any]) -> None:
        """Check the handshake's replies (raises the refusal) and keep the connection's id."""
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        self.client_id = int(replies[-1])


class Wire(_Endpoint):
    """One lazily (re)connected Redis connection for asyncio; see the module docstring."""

    _proto: _Protocol | None = None
    _connecting: asyncio.Lock | None = None

    async def execute(self, *commands: Sequence[Any], timeout: float | None = None) -> list[Any]:
        """Send ``commands`` in one write; their replies, in order. Error replies are returned as
        exception objects (like a pipeline with ``raise_on_error=False``); connection trouble raises
        redis-py's ``ConnectionError``, waiting longer than ``timeout`` (seconds; default the
        command timeout) ``TimeoutError``."""
        proto = self._proto
        if proto is None or not proto.usable:
            proto = await self._connect()
        _write(proto, commands)  # a function, not a coroutine: one frame fewer per call
        return await self._replies(proto, len(commands), self.command_timeout if timeout is None else timeout)

    async def execute_streamed(
        self,
        parts: Iterator[Sequence[Sequence[Any]]],
        *,
        abort: Sequence[Any] | None = None,
        timeout: float | None = None,
    ) -> list[Any]:
        """Write each part of one call as soon as it is produced, so Redis reads and parses the
        first while the caller builds the next (two cores instead of one after the other); then
        wait for all the replies.

        The parts are produced without yielding to the event loop, so no other call's commands can
        come between them, and no reply is read before the call is registered. When producing a
        part raises after some were written, ``abort`` (e.g. DISCARD) is written, the replies
        already due are read, and the error is raised: the connection stays in step and in use."""
        proto = self._proto
        if proto is None or not proto.usable:
            proto = await self._connect()
        assert proto.transport is not None
        written = 0
        try:
            for part in parts:
                proto.transport.write(b"".join(hiredis.pack_command(tuple(c)) for c in part))
                written += len(part)
        except BaseException:
            if written:
                if abort is not None:
                    proto.transport.write(hiredis.pack_command(tuple(abort)))
                    written += 1
                    with contextlib.suppress(Exception):
                        await self._replies(
                            proto, written, self.command_timeout if timeout is None else timeout
                        )
                else:
                    proto.fail(
                        RedisConnectionError("a streamed call failed half-written: connection dropped")
                    )
            raise
        return await self._replies(proto, written, self.command_timeout if timeout is None else timeout)

    async def _replies(self, proto: _Protocol, expected: int, timeout: float | None) -> list[Any]:
        """Wait for the next ``expected`` replies (the caller has just written their commands)."""
        if proto.lost is not None:
            raise proto.lost
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        proto.calls.append((future, expected, []))
        # A bare timer that fails the future, not asyncio.timeout(), which also finds, cancels and
        # uncancels the task: measured around one await of a resolved future, it doubled the cost
        # of the loop's round trip, the timer added a fifth (every enqueue and wake-up pays it).
        timer = None if timeout is None else loop.call_at(loop.time() + timeout, _expire, future)
        try:
            return await future
        except (TimeoutError, asyncio.CancelledError):
            # Abandoned with replies still due: they would be read as the next call's.
            proto.fail(RedisConnectionError("a call was abandoned (timeout or cancel): connection dropped"))
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._proto is not None and self._proto.usable:
                return self._proto  # another call connected while this one waited
            self.close()
            try:
                async with asyncio.timeout(self.connect_timeout):
                    proto = await self._open()
                    _write(proto, handshake := self._handshake())
                    replies = await self._replies(proto, len(handshake), None)
            except TimeoutError as exc:
                raise RedisConnectionError("timed out connecting to Redis") from exc
            except OSError as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
            try:
                self._greeted(replies)
            except Exception:
                proto.fail(RedisConnectionError("handshake refused"))
                raise
            self._proto = proto
            return proto

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        o = self.options
        if "path" in o:
            _, proto = await loop.create_unix_connection(_Protocol, o["path"])
        else:
            host, port = o.get("host", "localhost"), int(o.get("port", 6379))
            tls = self._tls()
            _, proto = await loop.create_connection(
                _Protocol, host, port, ssl=tls, server_hostname=host if tls is not None else None
            )
        return proto

    def close(self) -> None:
        """Drop the connection (calls waiting on it fail); the next call opens a new one."""
        if self._proto is not None:
            self._proto.fail(RedisConnectionError("connection closed by the client"))
        self._proto = None
        self.client_id = None

    async def aclose(self) -> None:
        self.close()


class SyncWire(_Endpoint):
    """The same lean connection for blocking code (``SyncTaskq``): a socket, the hiredis reader, and
    one ``sendall`` per call. Not thread-safe: one per thread, like a socket.

    A connection the server has closed since the last call (a Redis restart) is noticed before
    writing, by peeking at the socket, and replaced: a call is never sent twice."""

    _sock: socket.socket | None = None
    _reader: hiredis.Reader  # a fresh one per connection (set by _connect)
    _timeout: float | None = None  # the socket's now: set only when it changes (a system call)
    _kernel_timeouts = False  # SO_RCVTIMEO..: Python's poll before each send/recv; not for TLS

    def execute(self, *commands: Sequence[Any], timeout: float | None = None) -> list[Any]:
        """As ``Wire.execute``, blocking."""
        sock = self._sock
        if sock is None or _closed_by_peer(sock):
            sock = self._connect()
        return self._call(sock, commands, self.command_timeout if timeout is None else timeout)

    def _call(
        self, sock: socket.socket, commands: Sequence[Sequence[Any]], timeout: float | None
    ) -> list[Any]:
        try:
            if timeout != self._timeout:  # the kernel's timeouts: no poll before the send and recv
                self._set_timeout(sock, timeout)
            sock.sendall(b"".join(hiredis.pack_command(tuple(c)) for c in commands))
            replies: list[Any] = []
            while len(replies) < len(commands):
                reply = self._reader.gets()
                if reply is False:
                    data = sock.recv(65536)
                    if not data:
                        raise RedisConnectionError("connection to Redis lost: closed by the server")
                    self._reader.feed(data)
                    continue
                replies.append(_typed(reply) if isinstance(reply, ResponseError) else reply)
            return replies
        except BaseException as exc:
            # Whatever went wrong, replies may still be due on this socket: never reuse it.
            self.close()
            # BlockingIOError (EAGAIN) from a blocking socket: a kernel timeout ran out.
            if isinstance(exc, TimeoutError | socket.timeout | BlockingIOError):
                raise TimeoutError("Redis did not answer in time") from exc
            if isinstance(exc, OSError | hiredis.ProtocolError):
                raise RedisConnectionError(f"connection to Redis lost: {exc}") from exc
            raise

    def _connect(self) -> socket.socket:
        self.close()
        o = self.options
        try:
            if "path" in o:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.connect_timeout)
                sock.connect(o["path"])
            else:
                host = o.get("host", "localhost")
                sock = socket.create_connection((host, int(o.get("port", 6379))), self.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                tls = self._tls()
                if tls is not None:
                    sock = tls.wrap_socket(sock, server_hostname=host)
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._kernel_timeouts = not isinstance(sock, ssl.SSLSocket)
        self._set_timeout(sock, self.connect_timeout)
        try:
            self._greeted(self._call(sock, self._handshake(), self.connect_timeout))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return sock

    def _set_timeout(self, sock: socket.socket, timeout: float | None) -> None:
        if self._kernel_timeouts:
            sock.settimeout(None)  # blocking: send and recv go straight to the kernel
            seconds = 0.0 if timeout is None else max(timeout, 1e-6)  # 0: no limit for the kernel
            value = struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        else:
            sock.settimeout(timeout)
        self._timeout = timeout

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self.client_id = None


def _write(proto: _Protocol, commands: Sequence[Sequence[Any]]) -> None:
    assert proto.transport is not None
    if len(commands) == 1:
        proto.transport.write(hiredis.pack_command(tuple(commands[0])))
    else:
        proto.transport.write(b"".join(hiredis.pack_command(tuple(c)) for c in commands))


def _expire(future: asyncio.Future[list[Any]]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("Redis did not answer in time"))


def _closed_by_peer(sock: socket.socket) -> bool:
    """True when this idle connection has something to read: the server closed it (a restart), or
    sent bytes nobody asked for. Either way it must be replaced (works for TLS sockets too)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
