"""Run one handler in its mode under the job's timeout.

Stops (timeout, cancel request, lost lease, end of the shutdown grace) stop what can be stopped: a
coroutine is cancelled, a child process is killed. A thread cannot be stopped, so its job waits for it
to return and records what it really did (see ``run_in_thread``).
Process handlers are timed here; the others by the worker's ``Deadlines``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from multiprocessing.connection import Connection
from typing import Any

from taskq import NonRetryableError
from taskq.tasks import Handler, TaskArgs
from worker.child import ChildJob, child_main
from worker.context import JobContext

# forkserver: children fork from a small clean server process (fast, and never inherit the worker's
# threads, sockets or event loop the way a plain fork would).
_mp = multiprocessing.get_context("forkserver")
#: What the fork server imports once, so that each child starts with it imported.
BASE_PRELOAD = ("taskq", "pydantic", "worker.child")
_mp.set_forkserver_preload(list(BASE_PRELOAD))


def preload(handlers: Iterable[Handler]) -> list[str]:
    """Have the fork server import the isolated handlers' modules too (a child then only forks, it
    imports nothing). Takes effect if called before the first child starts, i.e. at worker start."""
    modules = sorted({h.ref.partition(":")[0] for h in handlers if h.mode == "process"})
    _mp.set_forkserver_preload([*BASE_PRELOAD, *modules])
    return modules


class JobTimeout(Exception):
    """The handler ran past the job's timeout and was stopped."""


class ChildFailed(Exception):
    """A process handler raised (type and message of the original) or its process died."""

    def __init__(self, type_name: str, message: str, retryable: bool, tb: str = "") -> None:
        super().__init__(message)
        self.type_name, self.retryable, self.child_traceback = type_name, retryable, tb


async def _readable(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = conn.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _serve(conn: Connection, ctx: JobContext) -> tuple[Any, ...]:
    """Perform the child's requests with the job's context until its outcome arrives (raises
    ``EOFError`` if it dies first). The caller's timeout or cancel ends this, then kills the child:
    neither side is left waiting on the other (a child blocked on a reply dies with its process)."""
    while True:
        await _readable(conn)
        message = conn.recv()
        kind = message[0]
        if kind == "progress":
            with contextlib.suppress(ValueError, TypeError):  # checked in the child already
                ctx.progress(message[1], message[2])
        elif kind == "enqueue":
            _, task, args, key, options = message
            try:
                done = await ctx.aenqueue(task, args, key=key, **options)
                reply: tuple[Any, ...] = ("enqueued", done.id, done.created)
            except Exception as exc:  # raised in the child, where the handler can catch it
                reply = ("error", type(exc).__name__, str(exc), not isinstance(exc, NonRetryableError))
            with contextlib.suppress(OSError):  # the child died meanwhile: recv() says so next
                conn.send(reply)
        else:
            return tuple(message)


async def run_in_process(handler: Handler, args: TaskArgs, ctx: JobContext, timeout: float) -> Any:
    """Run a process handler in a fresh child, killed at the timeout.

    Starting and reaping the child happen in a thread, never on the event loop: the first start also
    starts the fork server, which imports the handlers (a second or more here), and the loop must
    keep serving the other jobs, acks and claims meanwhile."""
    parent, child = _mp.Pipe(duplex=True)  # duplex: the child's progress and enqueue requests
    settings = ctx.settings
    job = ChildJob(ctx.job_id, ctx.queue, ctx.task, ctx.attempt, settings.reports_dir, settings.log_level)
    payload = args.model_dump(mode="json")
    proc = _mp.Process(target=child_main, args=(child, handler.ref, payload, job), daemon=True)
    starting = asyncio.ensure_future(asyncio.to_thread(proc.start))
    try:
        # Shielded: a cancel (job cancelled, hard stop) must not leave a child starting unseen.
        await asyncio.shield(starting)
        child.close()
        try:
            async with asyncio.timeout(timeout):
                message = await _serve(parent, ctx)
        except TimeoutError:
            raise JobTimeout(f"exceeded its timeout of {timeout:g}s (process killed)") from None
        except EOFError:
            await asyncio.to_thread(proc.join, 5)
            died = f"the handler's process exited with {proc.exitcode}"
            raise ChildFailed("ChildDied", died, True) from None
        if message[0] == "done":
            return message[1]
        _, type_name, text, retryable, tb = message
        raise ChildFailed(type_name, text, retryable, tb)
    finally:
        # Also on cancellation (job cancelled, lease lost, hard stop): the child never outlives its job.
        await asyncio.wait([starting])
        if proc.pid is not None:
            if proc.is_alive():
                proc.kill()
            await asyncio.to_thread(proc.join, 5)
        child.close()
        parent.close()


async def run_in_thread(
    fn: Callable[..., Any], args: TaskArgs, ctx: JobContext, pool: Executor, on_stop: Callable[[], None]
) -> Any:
    """Run a blocking handler in the pool; a stop (this task cancelled) cannot interrupt it.

    So a stop does not end the job: it waits for the thread and returns (or raises) what the thread
    did. Reporting the job cancelled, timed out or handed back while its code still runs would let a
    second worker run it at the same time, or call an email that went out "cancelled". ``on_stop``
    is told at the first stop (the worker stops cancelling, and bounds the wait)."""
    future = asyncio.get_running_loop().run_in_executor(pool, fn, args, ctx)
    stopped = False
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if not stopped:
                stopped = True
                on_stop()


async def execute(
    handler: Handler,
    task: str,
    args: TaskArgs,
    ctx: JobContext,
    timeout: float,
    pool: Executor,
    on_stop: Callable[[], None],
) -> Any:
    """Run the handler. Only process handlers are timed here (their child is killed); the worker times
    coroutine and thread handlers itself (``worker.deadlines``) and cancels them."""
    if handler.mode == "process":
        value = await run_in_process(handler, args, ctx, timeout)
    elif handler.mode == "async":
        value = await handler.fn(args, ctx)
    else:
        value = await run_in_thread(handler.fn, args, ctx, pool, on_stop)
    await ctx.flush_progress()
    return value
