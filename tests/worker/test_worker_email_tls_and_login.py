"""send_email over STARTTLS and implicit TLS, with login, against aiosmtpd on 127.0.0.1.

The server's certificate is self-signed, made here with the ``openssl`` command (the ``cryptography``
package is not a dependency). The worker trusts it only because ``SMTP_CA_FILE`` names it: verification
(chain and host name, here the IP address 127.0.0.1 in the certificate's subjectAltName) stays on, and
a worker without that setting refuses the server.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import ValidationError

from taskq import DeadReason, JobStatus, Taskq
from taskq.localserver import free_port
from worker.settings import WorkerSettings
from worker.testing import TERMINAL, RunningWorker, wait_status

Start = Callable[..., Awaitable[RunningWorker]]
USER, PASSWORD = "mailer", "correct horse battery staple"


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


@dataclass
class Mailbox:
    """What the server saw: each message with whether it came over TLS and who had logged in."""

    messages: list[tuple[bytes, bool, str | None]] = field(default_factory=list)
    logins: list[tuple[str, bool, bool]] = field(default_factory=list)  # (user, accepted, over TLS)

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = (user, password) == (USER, PASSWORD)
        self.logins.append((user, ok, over_tls(server)))
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.content, over_tls(server), session.auth_data))
        return "250 Message accepted"


def over_tls(server: Any) -> bool:
    # The transport in use now: the TLS one after STARTTLS, or the TLS listener's (session.ssl is only
    # set by STARTTLS in aiosmtpd).
    return server.transport.get_extra_info("ssl_object") is not None


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=taskq test SMTP",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Cert(cert, key)


def server_context(cert: Cert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert, cert.key)
    return context


@contextlib.contextmanager
def serve(**options: Any) -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate, **options
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def starttls_server(cert: Cert) -> Iterator[tuple[Mailbox, int]]:
    """Port 587 style: plain text until STARTTLS, which it requires before mail or login."""
    with serve(tls_context=server_context(cert), require_starttls=True, auth_required=True) as served:
        yield served


@pytest.fixture
def implicit_tls_server(cert: Cert) -> Iterator[tuple[Mailbox, int]]:
    """Port 465 style: TLS from the first byte. aiosmtpd counts only STARTTLS as TLS for offering AUTH,
    so that rule is off here (the whole connection is encrypted anyway); and with it off, aiosmtpd
    warns against requiring AUTH, so the tests check the login in what the server recorded instead."""
    with serve(ssl_context=server_context(cert), auth_require_tls=False) as served:
        yield served


async def send_one(
    settings: WorkerSettings, start_worker: Start, client_for: Callable[[WorkerSettings], Taskq], **kw: Any
) -> Any:
    await start_worker(settings)
    taskq = client_for(settings)
    args = {"recipient_email": "ada@example.com", "subject": "Over TLS", "body": "Sealed.\n"}
    job_id = (await taskq.enqueue("send_email", args, **kw)).id
    return await wait_status(taskq, job_id, TERMINAL, timeout=20)


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_an_email_is_delivered_over_tls_after_login(
    mode: str,
    cert: Cert,
    request: pytest.FixtureRequest,
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Start,
) -> None:
    mailbox, port = request.getfixturevalue(f"{mode}_tls_server" if mode == "implicit" else "starttls_server")
    settings = make_settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_from="jobs@taskq.test",
        smtp_starttls=mode == "starttls", smtp_tls=mode == "implicit",
        smtp_user=USER, smtp_password=PASSWORD, smtp_ca_file=cert.cert,
    )  # fmt: skip
    job = await send_one(settings, start_worker, client_for)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert mailbox.logins == [(USER, True, True)]
    ((content, over_tls, logged_in_as),) = mailbox.messages
    assert over_tls
    assert logged_in_as == USER
    assert message_from_bytes(content)["Subject"] == "Over TLS"


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_a_certificate_the_worker_was_not_told_to_trust_is_refused(
    mode: str,
    request: pytest.FixtureRequest,
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Start,
) -> None:
    """No SMTP_CA_FILE: the system CAs do not know this certificate, so nothing is sent (nor the password)."""
    mailbox, port = request.getfixturevalue(f"{mode}_tls_server" if mode == "implicit" else "starttls_server")
    settings = make_settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=mode == "starttls",
        smtp_tls=mode == "implicit", smtp_user=USER, smtp_password=PASSWORD,
    )  # fmt: skip
    job = await send_one(settings, start_worker, client_for, max_attempts=1)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in job.error.message
    assert not mailbox.logins
    assert not mailbox.messages


async def test_a_wrong_password_is_dead_lettered_after_one_attempt(
    cert: Cert,
    starttls_server: tuple[Mailbox, int],
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Start,
) -> None:
    mailbox, port = starttls_server
    settings = make_settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True,
        smtp_user=USER, smtp_password="wrong", smtp_ca_file=cert.cert,
    )  # fmt: skip
    job = await send_one(settings, start_worker, client_for, max_attempts=3)
    assert job.status is JobStatus.FAILED
    assert job.attempts == 1
    assert job.error is not None
    assert job.error.reason == DeadReason.NON_RETRYABLE.value
    assert "535" in job.error.message
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN): refused each time, never retried.
    assert mailbox.logins
    assert all(login == (USER, False, True) for login in mailbox.logins)
    assert not mailbox.messages


async def test_starttls_asked_of_a_server_without_it_is_never_sent_in_clear(
    make_settings: Callable[..., WorkerSettings],
    client_for: Callable[[WorkerSettings], Taskq],
    start_worker: Start,
) -> None:
    """SMTP_STARTTLS is a requirement, not a wish: no downgrade to plain text, and no retry either."""
    with serve(auth_require_tls=False) as (mailbox, port):
        settings = make_settings(
            smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True,
            smtp_user=USER, smtp_password=PASSWORD,
        )  # fmt: skip
        job = await send_one(settings, start_worker, client_for, max_attempts=3)
    assert job.status is JobStatus.FAILED
    assert job.attempts == 1
    assert job.error is not None
    assert job.error.reason == DeadReason.NON_RETRYABLE.value
    assert "STARTTLS" in job.error.message
    assert not mailbox.logins
    assert not mailbox.messages


def test_a_missing_ca_file_stops_the_worker_at_start(
    tmp_path: Path, make_settings: Callable[..., WorkerSettings]
) -> None:
    """Not at the first email: a typo in SMTP_CA_FILE is a configuration error, reported at once."""
    with pytest.raises(ValidationError, match="smtp_ca_file"):
        make_settings(smtp_tls=True, smtp_ca_file=tmp_path / "no-such-ca.pem")
