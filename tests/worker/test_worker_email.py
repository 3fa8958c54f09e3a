"""send_email against a real SMTP server (aiosmtpd on 127.0.0.1) that records what it receives."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from taskq import DeadReason, JobStatus, Taskq
from taskq.localserver import free_port
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, RunningWorker, wait_status

Start = Callable[..., Awaitable[RunningWorker]]


@dataclass
class Recorder:
    """Accepts mail for anyone but temp@ (451: try later) and perm@ (550: no such user)."""

    messages: list[bytes] = field(default_factory=list)
    rcpt_attempts: list[str] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        self.rcpt_attempts.append(address)
        if address.startswith("temp@"):
            return "451 4.3.0 Mailbox busy, try again later"
        if address.startswith("perm@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.original_content or envelope.content)
        return "250 Message accepted"


@contextlib.contextmanager
def serve_smtp(**smtp_options: Any) -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with serve_smtp() as served:
        yield served


@pytest.fixture
async def mail_env(
    smtp: tuple[Recorder, int],
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Start,
) -> tuple[Recorder, Taskq]:
    recorder, port = smtp
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="jobs@taskq.test")
    await start_worker(settings)
    return recorder, client_for(settings)


def email_args(to: str) -> dict[str, str]:
    return {"recipient_email": to, "subject": "Hello", "body": "It works.\n"}


async def test_an_email_is_delivered_and_its_message_id_is_the_result(
    mail_env: tuple[Recorder, Taskq],
) -> None:
    recorder, taskq = mail_env
    job_id = (await taskq.enqueue("send_email", email_args("ada@example.com"))).id
    job = await wait_status(taskq, job_id, TERMINAL, timeout=15)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert len(recorder.messages) == 1
    msg = message_from_bytes(recorder.messages[0])
    assert msg["To"] == "ada@example.com"
    assert msg["From"] == "jobs@taskq.test"
    assert msg["Subject"] == "Hello"
    assert msg["X-Taskq-Job-Id"] == job_id
    assert job.result == {"message_id": msg["Message-ID"]}


async def test_a_transient_smtp_error_is_retried(mail_env: tuple[Recorder, Taskq]) -> None:
    recorder, taskq = mail_env
    job_id = (await taskq.enqueue("send_email", email_args("temp@example.com"), max_attempts=2)).id
    job = await wait_status(taskq, job_id, {JobStatus.FAILED}, timeout=15)
    assert job.attempts == 2
    assert recorder.rcpt_attempts.count("temp@example.com") == 2
    assert job.error is not None
    assert job.error.type == "SmtpTransientError"
    assert job.error.reason == DeadReason.ERROR.value
    assert "451" in job.error.message


async def test_a_permanent_smtp_error_is_dead_lettered_at_once(mail_env: tuple[Recorder, Taskq]) -> None:
    recorder, taskq = mail_env
    job_id = (await taskq.enqueue("send_email", email_args("perm@example.com"), max_attempts=5)).id
    job = await wait_status(taskq, job_id, {JobStatus.FAILED}, timeout=15)
    assert job.attempts == 1
    assert recorder.rcpt_attempts == ["perm@example.com"]
    assert job.error is not None
    assert job.error.type == "SmtpPermanentError"
    assert job.error.reason == DeadReason.NON_RETRYABLE.value
    assert not recorder.messages


async def test_an_unreachable_smtp_server_is_retried(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Start,
) -> None:
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=2)
    taskq = client_for(settings)
    await start_worker(settings)
    job_id = (await taskq.enqueue("send_email", email_args("ada@example.com"), max_attempts=2)).id
    job = await wait_status(taskq, job_id, {JobStatus.FAILED}, timeout=15)
    assert job.attempts == 2
    assert job.error is not None
    assert job.error.type == "SmtpTransientError"


async def test_a_subject_injecting_a_header_is_dead_lettered_unrun_after_one_attempt(
    mail_env: tuple[Recorder, Taskq],
) -> None:
    """Written straight to Redis (a client that skipped the contract, an older producer): the worker
    checks the contract again and refuses it unrun, instead of failing it three times."""
    recorder, taskq = mail_env
    args = {**email_args("ada@example.com"), "subject": "Hi\r\nBcc: victim@example.com"}
    job_id = (await taskq.enqueue("send_email", args, max_attempts=3)).id
    job = await wait_status(taskq, job_id, {JobStatus.FAILED}, timeout=15)
    assert job.attempts == 1
    assert job.error is not None
    assert job.error.reason == DeadReason.INVALID_ARGS.value
    assert "subject" in job.error.message
    assert not recorder.rcpt_attempts


async def test_a_message_that_cannot_be_built_is_dead_lettered_after_one_attempt(
    smtp: tuple[Recorder, int],
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Start,
) -> None:
    """A sender that cannot be a header (SMTP_FROM with a line break): every attempt would fail alike."""
    recorder, port = smtp
    settings = make_settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_from="jobs@taskq.test\r\nBcc: victim@example.com"
    )
    await start_worker(settings)
    taskq = client_for(settings)
    job_id = (await taskq.enqueue("send_email", email_args("ada@example.com"), max_attempts=3)).id
    job = await wait_status(taskq, job_id, {JobStatus.FAILED}, timeout=15)
    assert job.attempts == 1
    assert job.error is not None
    assert job.error.type == "MessageNotBuildable"
    assert job.error.reason == DeadReason.NON_RETRYABLE.value
    assert not recorder.rcpt_attempts


async def test_a_non_ascii_address_to_a_server_without_smtputf8_is_dead_lettered_after_one_attempt(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Start,
) -> None:
    """This server does not advertise SMTPUTF8, so it can never take this address: not worth a retry."""
    with serve_smtp(enable_SMTPUTF8=False) as (recorder, port):
        settings = make_settings(smtp_host="127.0.0.1", smtp_port=port)
        await start_worker(settings)
        taskq = client_for(settings)
        job_id = (await taskq.enqueue("send_email", email_args("zoë@example.com"), max_attempts=3)).id
        job = await wait_status(taskq, job_id, {JobStatus.FAILED}, timeout=15)
    assert job.attempts == 1
    assert job.error is not None
    assert job.error.type == "SmtpPermanentError"
    assert job.error.reason == DeadReason.NON_RETRYABLE.value
    assert "SMTPUTF8" in job.error.message
    assert not recorder.messages
