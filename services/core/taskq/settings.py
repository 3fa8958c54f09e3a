"""Settings shared by every taskq process, read from the environment (and ``.env``) once at start.

Each service subclasses ``CoreSettings`` with its own fields; nothing else in taskq reads the
environment. Values are validated here so a bad deployment fails at start, not at the first job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from taskq.keys import validate_queue_name
from taskq.registry import TaskRegistry

#: Values shipped in .env.example; a service outside development refuses to start with them.
PLACEHOLDER_SECRETS = frozenset({"change-me", "changeme", "CHANGE_ME", "placeholder"})
#: QUEUES=* accepts any valid queue name (the suites isolate tests by random names); production refuses it.
ANY_QUEUE = "*"


def queue_accepted(declared: frozenset[str] | None, queue: str) -> bool:
    """Whether jobs may name ``queue`` (``declared`` None: any name). The one test behind the producer's
    422 and core's refusal to write: an undeclared name would cost keys, a registry entry and a line in
    every scrape, and no worker would ever run its jobs."""
    return declared is None or queue in declared


class CoreSettings(BaseSettings):
    # TASKQ_ENV_FILE names the dotenv file (default .env; empty: none). The test suites set it empty,
    # so a .env left by `make up` cannot change what they test.
    model_config = SettingsConfigDict(
        env_file=os.environ.get("TASKQ_ENV_FILE", ".env") or None, env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = Field(
        default="development", description="production refuses placeholder secrets"
    )

    # Redis
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL")
    redis_password: SecretStr | None = Field(default=None, description="overrides a password in the URL")
    redis_connect_timeout: float = Field(default=1.0, gt=0, le=30)
    redis_socket_timeout: float = Field(default=1.5, gt=0, le=60)
    taskq_prefix: str = Field(default="taskq", pattern=r"^[A-Za-z0-9_.\-]{1,32}$")

    # Leases and maintenance
    lease_seconds: float = Field(
        default=5.0, ge=0.2, le=3600, description="a lost worker's jobs return after this"
    )
    heartbeat_seconds: float = Field(default=1.0, gt=0, le=600, description="how often leases are renewed")

    # Retention
    result_ttl_seconds: int = Field(default=86_400, ge=1, description="finished jobs expire after this")
    dead_ttl_seconds: int = Field(
        default=7 * 86_400, ge=1, description="dead-lettered jobs expire after this"
    )
    idempotency_ttl_seconds: int = Field(default=86_400, ge=1)

    # Jobs
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    default_max_attempts: int = Field(default=3, ge=1, le=100)
    default_timeout_seconds: float = Field(default=300.0, gt=0, le=7 * 86_400)
    retry_backoff_base_seconds: float = Field(default=1.0, ge=0, le=3600)
    retry_backoff_max_seconds: float = Field(default=300.0, ge=0, le=86_400)
    events_max_len: int = Field(
        default=100_000,
        ge=100,
        le=50_000_000,
        description="entries each queue's event stream keeps for replay (GET /jobs/{id}/events, GET /events, "
        "Last-Event-ID), trimmed with MAXLEN ~. An entry is one event (~69 B of Redis memory; a progress "
        "message adds its length) or a script call's run of one type, at most 8 events (~44 B an event, "
        "~350 B a full entry; measured with MEMORY USAGE). So a full stream costs at most ~35 MB a queue "
        "at the default, ~13 MB in the common case: jobs enqueued one by one and claimed/acked in "
        "batches take ~1.25 entries and ~157 B each, so the default keeps ~80,000 jobs (~80 s of a queue "
        "running 1,000 jobs/s)",
    )
    queue_max_depth: int = Field(
        default=0, ge=0, description="0: unlimited; else enqueue beyond it is refused"
    )
    reports_dir: Path = Field(
        default=Path("/tmp/reports"),  # noqa: S108 (compose mounts a shared volume here)
        description="generate_report writes here; the producer serves GET /jobs/{id}/artifact from it",
    )
    debug_tasks: bool = Field(default=False, description="register debug.* tasks (tests and benchmarks)")
    taskq_tasks: str = Field(
        default="",
        description="comma list of modules (import paths) declaring your tasks, loaded at start beside the "
        "built-ins; the same value on the producer and every worker",
    )
    queues: str = Field(
        default="",
        description="comma list of the queues jobs may name and workers may serve, beyond 'default' and "
        "the registered tasks' own queues; the same value on the producer and every worker",
    )
    report_ttl_seconds: int = Field(
        default=86_400, ge=1, description="workers delete report files older than this; then 410"
    )

    @model_validator(mode="after")
    def _check(self) -> CoreSettings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds")
        scheme = urlsplit(self.redis_url).scheme
        if scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        declared = self._listed_queues()  # a bad name fails here, at start
        if self.environment == "production":
            if declared is None:
                raise ValueError("QUEUES=* (any queue) is for development and tests: list the queues")
            password = self.redis_password.get_secret_value() if self.redis_password else None
            if password is not None and password in PLACEHOLDER_SECRETS:
                raise ValueError("REDIS_PASSWORD is a placeholder: generate one (make up does)")
        return self

    def tasks(self) -> TaskRegistry:
        """The tasks this process knows: the built-ins and the ``TASKQ_TASKS`` modules, imported once.
        Raises ``TaskLoadError`` (the entry points turn it into a refusal to start)."""
        return TaskRegistry.load(self.taskq_tasks, debug=self.debug_tasks)

    def declared_queues(self) -> frozenset[str] | None:
        """The queues jobs may name: 'default', each registered task's own queue, and ``QUEUES``.
        None when ``QUEUES=*`` (any valid name)."""
        listed = self._listed_queues()
        return None if listed is None else frozenset({*listed, *self.tasks().queues()})

    def _listed_queues(self) -> frozenset[str] | None:
        text = self.queues.strip()
        if text == ANY_QUEUE:
            return None
        names = {"default"}
        for part in (p.strip() for p in text.split(",")):
            if part:
                try:
                    names.add(validate_queue_name(part))
                except ValueError as exc:
                    raise ValueError(f"QUEUES: {part!r}: {exc}") from None
        return frozenset(names)

    def redis_dsn(self) -> str:
        """The Redis URL with ``redis_password`` folded in (never logged)."""
        if self.redis_password is None:
            return self.redis_url
        parts = urlsplit(self.redis_url)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = (
            f"{quote(parts.username or '')}:{quote(self.redis_password.get_secret_value(), safe='')}@{host}"
        )
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def redacted_redis_url(self) -> str:
        """The Redis URL safe for logs: any password replaced by ***."""
        parts = urlsplit(self.redis_url)
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" if parts.password or self.redis_password else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
