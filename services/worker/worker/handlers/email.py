"""send_email: one plain-text message through the configured SMTP server (stdlib smtplib, in a thread).

Failure classes follow SMTP itself: a 4xx reply, a refused or dropped connection or a timeout is
transient (retried with backoff); a 5xx reply is permanent (dead-lettered at once, ``SmtpPermanentError``),
and so is a message this server cannot take as built (it lacks SMTPUTF8, STARTTLS or AUTH and the
message or settings need it). A message that cannot be built at all (``MessageNotBuildable``) is
permanent too: the same arguments and settings fail the same way on every attempt.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from taskq import NonRetryableError
from taskq.builtin_tasks import SendEmailArgs
from worker.context import JobContext
from worker.settings import WorkerSettings


class SmtpTransientError(RuntimeError):
    """The server said try again later (4xx), or could not be reached."""


class SmtpPermanentError(NonRetryableError):
    """The server refused the message for good (5xx), or lacks an extension the message needs."""


class MessageNotBuildable(NonRetryableError):
    """The email package refused a header or the body (e.g. a line break in a header value)."""


def build_message(args: SendEmailArgs, settings: WorkerSettings, job_id: str) -> EmailMessage:
    try:
        return _build(args, settings, job_id)
    except (ValueError, TypeError) as exc:  # UnicodeError is a ValueError
        raise MessageNotBuildable(f"the message cannot be built: {exc}"[:500]) from None


def _build(args: SendEmailArgs, settings: WorkerSettings, job_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = str(args.recipient_email)
    msg["Subject"] = args.subject
    msg["Date"] = formatdate(localtime=False)
    domain = settings.smtp_from.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(idstring=job_id.replace("-", ""), domain=domain)
    # Lets a receiving system de-duplicate a message sent twice by an at-least-once retry.
    msg["X-Taskq-Job-Id"] = job_id
    msg.set_content(args.body)
    return msg


def _classify(code: int, text: bytes | str) -> Exception:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    message = f"SMTP {code}: {detail}"[:500]
    if 400 <= code < 500:
        return SmtpTransientError(message)
    return SmtpPermanentError(message)


def send(settings: WorkerSettings, msg: EmailMessage) -> None:
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.smtp_timeout
    # Certificates and host names are always verified; SMTP_CA_FILE replaces the system's CAs (a private
    # CA, or a test server's self-signed certificate), it never turns verification off.
    cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    context = ssl.create_default_context(cafile=cafile)
    try:
        client: smtplib.SMTP = (
            smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
            if settings.smtp_tls
            else smtplib.SMTP(host, port, timeout=timeout)
        )
        with client:
            if settings.smtp_starttls:
                client.starttls(context=context)
            if settings.smtp_user and settings.smtp_password:
                client.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            refused = client.send_message(msg)
            if refused:
                code, text = next(iter(refused.values()))
                raise _classify(code, text)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        raise _classify(code, text) from None
    except smtplib.SMTPResponseException as exc:
        raise _classify(exc.smtp_code, exc.smtp_error) from None
    except smtplib.SMTPNotSupportedError as exc:
        # Before the OSError clause (SMTPException is an OSError): the server answered, and will answer
        # the same next time (e.g. a non-ASCII address to a server without SMTPUTF8).
        raise SmtpPermanentError(f"SMTP server cannot take this message: {exc}"[:500]) from None
    except ssl.SSLError as exc:
        # Retried like an unreachable server, but named for what it is (often SMTP_CA_FILE is missing).
        message = f"TLS with the SMTP server failed: {type(exc).__name__}: {exc}"
        raise SmtpTransientError(message[:500]) from None
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
        raise SmtpTransientError(f"SMTP server unreachable: {type(exc).__name__}: {exc}"[:500]) from None


def send_email(args: SendEmailArgs, ctx: JobContext) -> Any:
    msg = build_message(args, ctx.settings, ctx.job_id)
    send(ctx.settings, msg)
    return {"message_id": msg["Message-ID"]}
