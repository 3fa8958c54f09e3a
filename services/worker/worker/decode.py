"""Turn a claimed message into something runnable, or into the reason it is dead-lettered unrun."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from taskq import BadMessage, ClaimedJob, DeadReason, JobPayload, TaskRegistry
from taskq.tasks import Handler, TaskArgs


@dataclass(frozen=True, slots=True)
class Runnable:
    payload: JobPayload
    handler: Handler
    args: TaskArgs


class Refused(Exception):
    """The message must never run: dead-letter it with ``reason``."""

    def __init__(self, reason: DeadReason, type_name: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.type_name = reason, type_name


def decode(job: ClaimedJob, registry: TaskRegistry, handlers: dict[str, Handler], max_bytes: int) -> Runnable:
    if len(job.raw) > max_bytes:
        message = f"payload is {len(job.raw)} bytes, the limit is {max_bytes}"
        raise Refused(DeadReason.PAYLOAD_TOO_LARGE, "PayloadTooLarge", message)
    try:
        payload = job.payload()
    except BadMessage as exc:
        raise Refused(DeadReason.BAD_MESSAGE, "BadMessage", str(exc)) from None
    handler = handlers.get(payload.task)
    if handler is None or payload.task not in registry:
        raise Refused(DeadReason.UNKNOWN_TASK, "UnknownTask", f"no task named {payload.task[:200]!r}")
    try:
        args = registry.validate(payload.task, payload.args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<args>'}: {e['msg']}" for e in exc.errors())
        raise Refused(DeadReason.INVALID_ARGS, "InvalidArgs", problems[:1000]) from None
    return Runnable(payload, handler, args)
