"""Concurrent single-job enqueues share Redis round trips.

While one ``enqueue_many`` call of a queue is in flight, the jobs that arrive for that queue wait and
then go together in the next call: one EVALSHA writes all of them, atomically. Alone (concurrency
1) a job goes at once, so nothing waits for a timer. Per queue, never across queues: the script is
all-or-nothing for one queue, so an outage or a full Redis is the same answer for every job of the
call and none of them was written by halves. A full queue is not: when the call is refused for
depth, as many jobs as there is room for are sent again, so a burst fills the queue to its depth
and only the requests past it get a 429. Jobs with an
Idempotency-Key never come here (a conflict is one request's answer, not the batch's), and each job
is encoded and sized before it joins (a payload over the limit is a 413 for its own request only).
"""

from __future__ import annotations

import asyncio
import contextlib

from taskq import EncodedJob, Enqueued, EnqueueRequest, QueueFull, RedisUnavailable, Taskq

#: Jobs per script call: bounds the time one call holds Redis (about 10 µs per job).
MAX_BATCH = 256


class Coalescer:
    def __init__(self, taskq: Taskq, max_batch: int = MAX_BATCH) -> None:
        self.taskq = taskq
        self.max_batch = max_batch
        self._waiting: dict[str, list[tuple[EncodedJob, asyncio.Future[Enqueued]]]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}

    async def enqueue(self, req: EnqueueRequest) -> Enqueued:
        # Sized here, alone: numbers grow when re-encoded (1e15 is stored as 1000000000000000.0), so
        # the body's length says nothing sure about the payload's, and a batch fails whole on one.
        job = self.taskq.encode(req)
        future: asyncio.Future[Enqueued] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(req.queue, []).append((job, future))
        if req.queue not in self._flushers:
            self._flushers[req.queue] = asyncio.create_task(self._flush(req.queue))
        # A cancelled request cancels only its own future: the flusher skips done futures, and the call
        # carrying the other requests' jobs runs on in its own task.
        return await future

    async def _flush(self, queue: str) -> None:
        batch: list[tuple[EncodedJob, asyncio.Future[Enqueued]]] = []
        try:
            while waiting := self._waiting.get(queue):
                batch, self._waiting[queue] = waiting[: self.max_batch], waiting[self.max_batch :]
                cap = len(batch)
                while batch:
                    part = batch[:cap]
                    try:
                        done = await self.taskq.enqueue_many([req for req, _ in part])
                    except QueueFull as exc:
                        # The script refuses a call whole when its jobs do not all fit, but these are
                        # separate requests: the ones that fit are sent again alone, and only the rest
                        # are refused. A refusal means room < len(part), so cap shrinks every time.
                        room = exc.limit - exc.depth
                        if room > 0:
                            cap = room
                        else:
                            _fail(batch, exc)
                            batch = []
                        continue
                    except Exception as exc:
                        _fail(batch, exc)
                        batch = []
                        continue
                    for (_, future), result in zip(part, done, strict=True):
                        if not future.done():
                            future.set_result(result)
                    batch = batch[len(part) :]
        except BaseException:
            # Cancelled (shutdown): nobody may be left waiting for an answer that will never come.
            _fail(batch + self._waiting.pop(queue, []), RedisUnavailable("the producer is shutting down"))
            raise
        finally:
            del self._flushers[queue]
            if not self._waiting.get(queue):
                self._waiting.pop(queue, None)

    async def close(self) -> None:
        """Wait for the calls in flight (lifespan exit: their requests are still being answered)."""
        for task in list(self._flushers.values()):
            with contextlib.suppress(Exception):
                await task


def _fail(batch: list[tuple[EncodedJob, asyncio.Future[Enqueued]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
