"""The task contract: every task name and the pydantic model of its arguments.

The producer validates against it before anything touches Redis (unknown task or bad args: 422),
and the worker validates again before running (a message that does not validate is dead-lettered,
never executed). Handlers live in the worker; only names and argument shapes live here. Nothing is
ever imported from a name found in a message: this registry is the allow-list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, EmailStr, Field, ValidationError

from taskq.errors import UnknownTask


class TaskArgs(BaseModel):
    """Base of every argument model: unknown fields, NaN and Infinity are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=100_000)


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


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    args_model: type[TaskArgs]
    description: str
    queue: str = "default"
    debug: bool = False

    def json_schema(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()


CORE_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("send_email", SendEmailArgs, "Send a plain-text email through the configured SMTP server"),
    TaskSpec("generate_report", GenerateReportArgs, "Build a CSV report of recent job statistics"),
    TaskSpec("call_webhook", CallWebhookArgs, "POST a JSON payload to a public http(s) URL"),
)

DEBUG_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("debug.noop", NoopArgs, "Do nothing; return the tag", debug=True),
    TaskSpec("debug.sleep", SleepArgs, "Sleep without blocking the event loop", debug=True),
    TaskSpec("debug.hold", HoldArgs, "Block a thread, recording start and end in a ledger", debug=True),
    TaskSpec("debug.record", RecordArgs, "Sleep, then record the execution in an fsynced ledger", debug=True),
    TaskSpec("debug.fail", FailArgs, "Raise an error (retryable or not)", debug=True),
    TaskSpec("debug.crash", CrashArgs, "Kill the worker process mid-job", debug=True),
    TaskSpec("debug.spin", SpinArgs, "Busy-loop holding the GIL", debug=True),
)


class TaskRegistry:
    """The allow-list of task names. Build one per process with ``TaskRegistry.build``."""

    def __init__(self, specs: tuple[TaskSpec, ...] | list[TaskSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}

    @classmethod
    def build(cls, *, debug: bool) -> TaskRegistry:
        return cls(CORE_TASKS + DEBUG_TASKS if debug else CORE_TASKS)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Any:
        return iter(self._specs.values())

    def get(self, name: str) -> TaskSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownTask(name) from None

    def validate(self, name: str, args: Any) -> TaskArgs:
        """The parsed arguments; raises ``UnknownTask`` or pydantic's ``ValidationError``."""
        return self.get(name).args_model.model_validate(args)


__all__ = [
    "CORE_TASKS",
    "DEBUG_TASKS",
    "CallWebhookArgs",
    "GenerateReportArgs",
    "RecordArgs",
    "SendEmailArgs",
    "TaskArgs",
    "TaskRegistry",
    "TaskSpec",
    "ValidationError",
]
