"""The built-in tasks, declared through the public API like any user's (``taskq.tasks``).

Their handlers live in the worker (``worker.handlers``), named by import path, so the producer
loads these contracts without the worker's dependencies: the same split a user's project makes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AnyHttpUrl, EmailStr, Field

from taskq.tasks import TaskArgs, Tasks

#: What may not appear in a value that becomes a mail header: C0 controls but TAB (CR and LF would end
#: the header and start another, "Hi\r\nBcc: ..."; NUL is refused by SMTP servers), DEL, the C1 controls,
#: and U+2028/U+2029, all of which Python's email package treats as line breaks (``str.splitlines``)
#: and refuses to build. TAB is allowed: RFC 5322 folding whitespace, harmless inside a header.
_HEADER_BREAKERS = r"\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029"
_HEADER_BREAKER_RE = re.compile(f"[{_HEADER_BREAKERS}]")
#: The same rule in the JSON Schema, so a client or a fuzzer generating from the schema never sends a
#: subject the API then refuses. It ends in "no character follows", not "$": Python's "$" also matches
#: before a final "\n", and Hypothesis (schemathesis) generated subjects ending in one.
HEADER_TEXT_PATTERN = f"^[^{_HEADER_BREAKERS}]*(?![\\s\\S])"


def _header_safe(value: str) -> str:
    found = _HEADER_BREAKER_RE.search(value)
    if found is not None:
        raise ValueError(f"control character U+{ord(found.group()):04X} is not allowed in a mail header")
    return value


#: Text that becomes a mail header: checked here, so a header injection is a 422 at the edge.
HeaderText = Annotated[
    str, AfterValidator(_header_safe), Field(json_schema_extra={"pattern": HEADER_TEXT_PATTERN})
]


class SendEmailArgs(TaskArgs):
    # email-validator already refuses CR, LF, NUL and every other control character in an address.
    recipient_email: EmailStr = Field(max_length=254, description="Where the email goes")
    subject: HeaderText = Field(
        min_length=1,
        max_length=998,
        description="Subject line (RFC 5322 limit); control characters but TAB are refused",
    )
    body: str = Field(max_length=100_000, description="Plain-text body")


class GenerateReportArgs(TaskArgs):
    title: str = Field(default="Job statistics", min_length=1, max_length=200)
    queues: list[str] | None = Field(
        default=None, max_length=100, description="Queues to include; all known queues when omitted"
    )
    since: datetime | None = Field(default=None, description="Start of the window (ISO 8601)")
    until: datetime | None = Field(default=None, description="End of the window (ISO 8601)")
    rows: int = Field(default=1000, ge=1, le=100_000, description="Maximum rows of recent jobs")


class CallWebhookArgs(TaskArgs):
    url: AnyHttpUrl = Field(description="http(s) URL to POST to; private addresses are refused")
    payload: dict[str, Any] = Field(default_factory=dict, description="JSON body to send")
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)


class NoopArgs(TaskArgs):
    tag: str | None = Field(default=None, max_length=200, description="Free text, echoed as the result")


class SleepArgs(TaskArgs):
    seconds: float = Field(ge=0, le=3600)
    tag: str | None = Field(default=None, max_length=200)


class StepsArgs(TaskArgs):
    steps: int = Field(default=5, ge=1, le=100, description="Progress reports, one after each step")
    step_seconds: float = Field(default=0.5, ge=0, le=60, description="How long each step sleeps")


class HoldArgs(TaskArgs):
    seconds: float = Field(ge=0, le=3600, description="Block a worker thread for this long")
    tag: str | None = Field(default=None, max_length=200)


class RecordArgs(TaskArgs):
    """debug.record: the chaos load's job. The client's tag is the key of its history, so a request
    whose reply was lost (timeout, cut connection) can still be matched to what ran."""

    tag: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    sleep_ms: int = Field(default=0, ge=0, le=600_000, description="Sleep this long, then record")
    fail_attempts: int = Field(default=0, ge=0, le=100, description="Fail this many first attempts")


class FailArgs(TaskArgs):
    message: str = Field(default="debug.fail was asked to fail", max_length=1000)
    retryable: bool = True


class CrashArgs(TaskArgs):
    exit_code: int = Field(default=137, ge=1, le=255)


class SpinArgs(TaskArgs):
    seconds: float = Field(ge=0, le=3600, description="Busy-loop holding the GIL for this long")


#: send_email, generate_report, call_webhook: always registered.
builtin = Tasks()
builtin.declare(
    "send_email", SendEmailArgs, handler="worker.handlers.email:send_email",
    description="Send a plain-text email through the configured SMTP server",
)  # fmt: skip
builtin.declare(
    "generate_report", GenerateReportArgs, handler="worker.handlers.report:generate_report",
    description="Build a CSV report of recent job statistics",
)  # fmt: skip
builtin.declare(
    "call_webhook", CallWebhookArgs, handler="worker.handlers.webhook:call_webhook",
    description="POST a JSON payload to a public http(s) URL",
)  # fmt: skip

#: debug.*: registered only with DEBUG_TASKS (tests, benchmarks, chaos).
debug = Tasks()
for _name, _model, _description, _isolated in (
    ("noop", NoopArgs, "Do nothing; return the tag", False),
    ("sleep", SleepArgs, "Sleep without blocking the event loop", False),
    ("steps", StepsArgs, "Sleep in steps, reporting progress after each", False),
    ("hold", HoldArgs, "Block a thread, recording start and end in a ledger", False),
    ("record", RecordArgs, "Sleep, then record the execution in an fsynced ledger", False),
    ("fail", FailArgs, "Raise an error (retryable or not)", False),
    ("crash", CrashArgs, "Kill the worker process mid-job", False),
    ("spin", SpinArgs, "Busy-loop holding the GIL", True),
):
    debug.declare(
        f"debug.{_name}", _model, handler=f"worker.handlers.debug:{_name}", description=_description,
        isolated=_isolated, debug=True,
    )  # fmt: skip

__all__ = [
    "CallWebhookArgs",
    "CrashArgs",
    "FailArgs",
    "GenerateReportArgs",
    "HoldArgs",
    "NoopArgs",
    "RecordArgs",
    "SendEmailArgs",
    "SleepArgs",
    "SpinArgs",
    "StepsArgs",
    "builtin",
    "debug",
]
