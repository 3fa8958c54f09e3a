"""A TCP proxy that adds latency to one link: ``python -m e2e.chaos.linkproxy`` (the ``redis-link``
service of compose.chaos.yaml, between one worker and Redis).

The containers run with every capability dropped, so ``tc netem`` is out: this proxy delays every
chunk it reads, in each direction, by the delay current when the chunk was read, and keeps each
direction's order (a chunk waits for the ones read before it). A line protocol on the control port
sets it: ``delay <ms>`` answers ``ok <ms>``; ``delay`` answers the current value. When one side
closes, the proxy closes the other after what it already read has been delivered.

``python -m e2e.chaos.linkproxy check`` is the healthcheck (the control port answers)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass(slots=True)
class LinkProxy:
    upstream: tuple[str, int]
    delay: float = 0.0  # seconds added to each chunk, each way
    _servers: list[asyncio.Server] = field(default_factory=list)
    _links: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, listen: tuple[str, int], control: tuple[str, int]) -> tuple[int, int]:
        """Listen for clients and for control lines; return the two bound ports (0 picks one)."""
        self._servers = [
            await asyncio.start_server(self._client, *listen),
            await asyncio.start_server(self._control, *control),
        ]
        return tuple(s.sockets[0].getsockname()[1] for s in self._servers)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._links):
            task.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()  # no upstream: the client sees its connection closed, as with Redis down
            self._links.discard(task)
            return
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        try:
            # Either side closing ends the link: a client must not hang on a half-open connection.
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()
            self._links.discard(task)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Read chunks as they come, stamping each with its due time; write each when due, in order.
        Reading goes on while a chunk waits, so a delay is added once, not once per chunk."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            while chunk := await source.read(CHUNK):
                queue.put_nowait((time.monotonic() + self.delay, chunk))
            queue.put_nowait((time.monotonic() + self.delay, b""))  # EOF, delivered in order too

        reading = asyncio.create_task(read())
        try:
            while True:
                due, chunk = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # the delay itself: what this proxy exists to add
                if not chunk:
                    return
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, OSError):
            return
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write((self.command(line.decode("ascii", "replace")) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def command(self, line: str) -> str:
        words = line.split()
        if words[:1] != ["delay"] or len(words) > 2:
            return "error: expected 'delay' or 'delay <ms>'"
        if len(words) == 2:
            try:
                ms = float(words[1])
            except ValueError:
                return f"error: not a number of milliseconds: {words[1]!r}"
            if ms < 0:
                return "error: a delay is not negative"
            self.delay = ms / 1000
            return f"ok {ms:g}"
        return f"{self.delay * 1000:g}"


def control(address: tuple[str, int], line: str, *, timeout: float = 5.0) -> str:
    """Send one control line (``delay 150``) and return the answer: what the chaos runner calls."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(line.encode("ascii") + b"\n")
        answer = sock.makefile("r", encoding="ascii").readline().strip()
    if answer.startswith("error"):
        raise ValueError(answer)
    return answer


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


async def _serve(args: argparse.Namespace) -> None:
    proxy = LinkProxy(_address(args.upstream))
    await proxy.start(_address(args.listen), _address(args.control))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # `docker stop`: close the links, exit 0
        loop.add_signal_handler(signum, stop.set)
    print(f"linkproxy: {args.listen} -> {args.upstream}, control on {args.control}", flush=True)
    await stop.wait()
    await proxy.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.chaos.linkproxy")
    parser.add_argument("action", nargs="?", choices=["serve", "check"], default="serve")
    parser.add_argument("--listen", default="0.0.0.0:6379")
    parser.add_argument("--upstream", default="redis:6379")
    parser.add_argument("--control", default="0.0.0.0:7000")
    args = parser.parse_args(argv)
    if args.action == "check":
        with contextlib.suppress(OSError, ValueError):
            control(("127.0.0.1", _address(args.control)[1]), "delay", timeout=2)
            return 0
        return 1
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
