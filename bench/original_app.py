"""The original producer pattern, kept only as the benchmark's baseline: an ``async def`` endpoint that
calls the *synchronous* redis client, so every LPUSH blocks the event loop. Do not copy."""

from __future__ import annotations

import json
import os

import redis
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
client = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


class Email(BaseModel):
    recipient_email: str
    subject: str
    body: str


@app.post("/send-email")
async def send_email(email: Email) -> dict[str, str]:
    task = {"recipient_email": email.recipient_email, "subject": email.subject, "body": email.body}
    client.lpush("email_queue", json.dumps(task))
    return {"status": "queued", "message": "Email task added to queue"}
