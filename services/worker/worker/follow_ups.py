"""``ctx.enqueue``: follow-up jobs started by a handler, exactly once per job.

A handler runs at least once: a retry, or a run after its worker was killed, executes its code again,
enqueues included. So each follow-up is keyed by the *job* (not the attempt): the n-th unkeyed call of
an attempt gets the idempotency key ``"{job_id}.{n}"``, a call with ``key=`` gets ``"{job_id}.{key}"``.
The key is claimed fleet-wide first, the way the producer claims a client's ``Idempotency-Key``
(``Taskq.claim_idempotency_key``), with a fingerprint of the request; then the job is enqueued under
it. A later attempt making the same call gets the first job back (``Enqueued.created`` False); one
making a different call under the same key gets ``IdempotencyConflict``. The records live
``IDEMPOTENCY_TTL_SECONDS``: an attempt later than that would enqueue again.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from taskq import Enqueued, IdempotencyConflict, Taskq, TaskRegistry, fingerprint_of
from taskq.context import NamedTask
from taskq.results import EnqueueRequest
from taskq.tasks import Task

#: ``key=``: short and safe inside a Redis key; never all digits, so it cannot collide with call n.
KEY_PATTERN = r"^(?![0-9]+$)[A-Za-z0-9_.:=+\-]{1,64}$"
_KEY = re.compile(KEY_PATTERN)
#: The options ``ctx.enqueue`` takes, as ``Task.request`` names them.
OPTIONS = frozenset({"queue", "priority", "delay_seconds", "max_attempts", "timeout_seconds"})
#: Marks the fingerprints of follow-ups (the producer's start with the route's name).
FINGERPRINT_KIND = "ctx.enqueue"


def task_of(registry: TaskRegistry, task: NamedTask | str) -> Task[Any]:
    """A declared task as it is, a name through the registry (``UnknownTask`` when it has none)."""
    if isinstance(task, Task):
        return task
    return registry.get(task if isinstance(task, str) else task.name)


def idempotency_key(job_id: str, call: int, key: str | None) -> str:
    if key is None:
        return f"{job_id}.{call}"
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(
            f"ctx.enqueue key {key!r}: 1-64 characters of letters, digits and _ . : = + -, not all digits"
        )
    return f"{job_id}.{key}"


def follow_up(
    registry: TaskRegistry,
    task: NamedTask | str,
    args: BaseModel | Mapping[str, Any] | None,
    idem_key: str,
    options: Mapping[str, Any],
) -> EnqueueRequest:
    """The request, validated and fingerprinted (no I/O: raises in the handler's own thread)."""
    unknown = set(options) - OPTIONS
    if unknown:
        raise TypeError(f"ctx.enqueue got unknown options {sorted(unknown)}; it takes {sorted(OPTIONS)}")
    req = task_of(registry, task).request(args, idempotency_key=idem_key, **options)
    canonical = json.dumps(req.args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    options_used = (req.priority, req.delay_ms, req.max_attempts, req.timeout)
    fingerprint = fingerprint_of(FINGERPRINT_KIND, req.task, canonical, *map(str, options_used))
    return dataclasses.replace(req, fingerprint=fingerprint)


async def submit(taskq: Taskq, req: EnqueueRequest, job_id: str) -> Enqueued:
    """Claim the key fleet-wide, then enqueue under it: a repeat returns the job the key names."""
    key, fingerprint = req.idempotency_key, req.fingerprint
    assert key is not None  # follow_up sets both
    assert fingerprint is not None
    queue = taskq.accepted_queue(req.queue)
    try:
        await taskq.claim_idempotency_key(key, queue, fingerprint, req.delay_ms)
        return (await taskq.enqueue_many([req]))[0]
    except IdempotencyConflict as exc:
        raise _conflict(exc, job_id) from None


def _conflict(exc: IdempotencyConflict, job_id: str) -> IdempotencyConflict:
    other = f" (job {exc.job_id})" if exc.job_id else ""
    error = IdempotencyConflict(exc.key, exc.job_id)
    # The same type (callers catch IdempotencyConflict), with a message that says what to change.
    error.args = (
        f"ctx.enqueue of job {job_id}: key {exc.key!r} already names a follow-up{other} made from a "
        "different request (task, args or options). A retried attempt must repeat its enqueues in the "
        "same order with the same arguments; name a follow-up with key= when it is not always made.",
    )
    return error
