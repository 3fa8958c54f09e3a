"""The worker's settings: ``CoreSettings`` plus what only the worker needs, read from the environment once.

Queue order (``WORKER_QUEUES``): within one queue, jobs run by priority (9 first), then by enqueue time.
Across queues, ``high:3,default:1`` means that out of every 4 claims that find work, about 3 go to
``high`` and 1 to ``default`` (smooth weighted round robin); a queue with nothing waiting yields its turn,
so no queue starves and no capacity idles while any queue has work.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, FilePath, SecretStr, field_validator, model_validator

from taskq import CoreSettings, validate_queue_name
from taskq.settings import PLACEHOLDER_SECRETS


class CronJob(BaseModel):
    """A periodic job: ``schedule`` is cron syntax (5 fields, or 6 with seconds last), in UTC."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    schedule: str
    task: str
    args: dict[str, Any] = Field(default_factory=dict)
    queue: str = "default"
    priority: int = Field(default=5, ge=0, le=9)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"not a valid cron schedule: {value!r}")
        return value

    @field_validator("queue")
    @classmethod
    def _valid_queue(cls, value: str) -> str:
        return validate_queue_name(value)


@dataclass(frozen=True, slots=True)
class QueueWeight:
    name: str
    weight: int


def parse_queues(text: str) -> tuple[QueueWeight, ...]:
    """``high:3,default`` -> (high, 3), (default, 1). Order breaks ties between equal weights."""
    out: list[QueueWeight] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":")
        w = int(weight) if weight else 1
        if not 1 <= w <= 1000:
            raise ValueError(f"queue weight must be 1-1000: {part!r}")
        if any(q.name == name for q in out):
            raise ValueError(f"queue {name!r} listed twice")
        out.append(QueueWeight(validate_queue_name(name.strip()), w))
    if not out:
        raise ValueError("WORKER_QUEUES names no queue")
    return tuple(out)


class WorkerSettings(CoreSettings):
    worker_concurrency: int = Field(default=10, ge=1, le=10_000, description="jobs run at once")
    worker_queues: str = Field(
        default="default", description="comma list of queue[:weight], e.g. high:3,default:1"
    )
    worker_prefetch: int = Field(
        default=0, ge=0, le=10_000, description="jobs claimed beyond concurrency (leased while waiting)"
    )
    worker_shutdown_grace: float = Field(
        default=25.0, ge=0, le=3600, description="seconds jobs in hand may finish after SIGTERM"
    )
    # /tmp is a tmpfs in compose (the root fs is read-only).
    worker_state_dir: Path = Field(
        default=Path("/tmp"),  # noqa: S108
        description="where `check` finds the worker id",
    )
    # A volume of its own in the chaos overlay: the record of executions must outlive every fault.
    debug_ledger_dir: Path | None = Field(
        default=None, description="where debug.record appends its ledger (default: worker_state_dir)"
    )
    worker_maintenance_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="reap + promote at most once per this, fleet-wide"
    )
    worker_idle_wait_seconds: float = Field(
        default=5.0, gt=0, le=60, description="longest blocking wait for work before re-checking"
    )
    worker_event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto", description="auto: uvloop when installed"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR (any case)")

    # send_email
    smtp_host: str = Field(default="localhost")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="upgrade with STARTTLS (port 587)")
    smtp_tls: bool = Field(default=False, description="implicit TLS from the first byte (port 465)")
    smtp_ca_file: FilePath | None = Field(
        default=None, description="PEM CA bundle trusted for SMTP TLS instead of the system's (private CA)"
    )
    smtp_from: str = Field(default="taskq@localhost")
    smtp_timeout: float = Field(default=10.0, gt=0, le=300)

    # generate_report writes to reports_dir (a core setting: the producer serves the files)

    # call_webhook
    webhook_allowlist: str = Field(
        default="", description="hosts or CIDRs allowed despite the SSRF guard (local testing only)"
    )
    webhook_max_response_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1024 * 1024)
    webhook_max_redirects: int = Field(default=3, ge=0, le=10)

    # scheduled jobs
    cron_jobs: str = Field(default="[]", description="JSON list of {name, schedule, task, args, queue}")

    @field_validator("log_level")
    @classmethod
    def _valid_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return level

    @model_validator(mode="after")
    def _check_worker(self) -> WorkerSettings:
        self.queue_weights()
        self.cron()
        self.allowlist()
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("SMTP_TLS and SMTP_STARTTLS are exclusive")
        password = self.smtp_password.get_secret_value() if self.smtp_password else None
        if self.environment == "production" and password in PLACEHOLDER_SECRETS:
            raise ValueError("SMTP_PASSWORD is a placeholder: set the real one")
        return self

    def queue_weights(self) -> tuple[QueueWeight, ...]:
        return parse_queues(self.worker_queues)

    def queue_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.queue_weights())

    def undeclared_queues(self) -> list[str]:
        """Queues this worker would serve (WORKER_QUEUES) or fill (CRON_JOBS) that QUEUES does not
        declare: the worker refuses to start with any (the producer would refuse their jobs)."""
        declared = self.declared_queues()
        wanted = [*self.queue_names(), *(job.queue for job in self.cron())]
        return sorted({q for q in wanted if declared is not None and q not in declared})

    def cron(self) -> tuple[CronJob, ...]:
        raw = json.loads(self.cron_jobs or "[]")
        if not isinstance(raw, list):
            raise ValueError("CRON_JOBS must be a JSON list")
        jobs = tuple(CronJob.model_validate(item) for item in raw)
        if len({j.name for j in jobs}) != len(jobs):
            raise ValueError("CRON_JOBS names must be unique")
        return jobs

    def allowlist(self) -> Allowlist:
        return Allowlist.parse(self.webhook_allowlist)


@dataclass(frozen=True, slots=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        hosts: set[str] = set()
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in (p.strip() for p in text.split(",")):
            if not item:
                continue
            try:
                nets.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(nets))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip in net for net in self.networks if net.version == ip.version)
