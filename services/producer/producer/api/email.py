"""POST /send-email: the original interface, kept exactly (now validated and reliable)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from producer.deps import IdempotencyKeyDep, RegistryDep, StrictJSONRoute, TaskqDep
from producer.openapi import BODY, COMMON, problems
from producer.schemas import EmailAccepted
from producer.submit import email_accepted, email_job, enqueue_one, fingerprint
from taskq.builtin_tasks import SendEmailArgs

router = APIRouter(tags=["email"], route_class=StrictJSONRoute)


@router.post(
    "/send-email",
    status_code=202,
    response_model=EmailAccepted,
    summary="Queue an email (the original interface)",
    responses={
        200: {"model": EmailAccepted, "description": "Idempotent repeat: the job the key already named"},
        **problems(400, *BODY, *COMMON),
    },
)
async def send_email(
    body: SendEmailArgs, taskq: TaskqDep, registry: RegistryDep, key: IdempotencyKeyDep
) -> Response:
    """Enqueue a ``send_email`` job. The body is the task's own argument model (validated once)."""
    fp = fingerprint("POST /send-email", body) if key else None
    _, done, _ = await enqueue_one(taskq, registry, email_job(body), key, fp)
    return Response(
        email_accepted(done.id),
        status_code=202 if done.created else 200,
        headers={"Location": f"/jobs/{done.id}"},
        media_type="application/json",
    )
