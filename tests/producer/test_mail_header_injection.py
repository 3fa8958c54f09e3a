"""A subject or recipient carrying CR, LF, NUL or another control character would become a forged mail
header ("Hi\\r\\nBcc: victim@example.com"): it is a 422 naming the field on every way in (POST
/send-email, POST /jobs with send_email, and POST /jobs/batch, refused whole), and nothing reaches Redis."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from producer.testing import EMAIL, assert_problem

#: Every C0 control but TAB (RFC 5322 folding whitespace, allowed), DEL, a CRLF pair, an injected header,
#: and the characters Python's email package also takes for line breaks (NEL, U+2028, U+2029).
BAD_SUBJECTS = [
    *(f"Hi{chr(c)}there" for c in range(0x20) if c != 0x09),
    "Hi\x7fthere",
    "Hi\r\nBcc: victim@example.com",
    "Hi\n",
    "Hi\x85there",
    "Hi\u2028there",
    "Hi\u2029there",
]


def send_email_body(args: dict[str, Any]) -> dict[str, Any]:
    return args


def jobs_body(args: dict[str, Any]) -> dict[str, Any]:
    return {"task": "send_email", "args": args}


def batch_body(args: dict[str, Any]) -> dict[str, Any]:
    return {"jobs": [{"task": "debug.noop"}, jobs_body(args)]}


#: (path, how the email args are wrapped, where the error is located)
ENDPOINTS = [
    pytest.param("/send-email", send_email_body, ["body"], id="send-email"),
    pytest.param("/jobs", jobs_body, ["body", "args"], id="jobs"),
    pytest.param("/jobs/batch", batch_body, ["body", "jobs", 1, "args"], id="jobs-batch"),
]


@pytest.mark.parametrize(("path", "wrap", "loc"), ENDPOINTS)
async def test_control_characters_in_the_subject_are_a_422_and_nothing_is_enqueued(
    path: str, wrap: Any, loc: list[str | int], client: httpx.AsyncClient
) -> None:
    assert (await client.get("/queues")).json() == []
    for subject in BAD_SUBJECTS:
        response = await client.post(path, json=wrap({**EMAIL, "subject": subject}))
        problem = assert_problem(response, 422)
        assert [e["loc"] for e in problem["errors"]] == [[*loc, "subject"]], repr(subject)
        assert "control character" in problem["errors"][0]["msg"], repr(subject)
    assert (await client.get("/queues")).json() == []


@pytest.mark.parametrize(("path", "wrap", "loc"), ENDPOINTS)
async def test_control_characters_in_the_recipient_are_a_422_and_nothing_is_enqueued(
    path: str, wrap: Any, loc: list[str | int], client: httpx.AsyncClient
) -> None:
    bad = ["ada@example.com\r\nBcc: victim@example.com", "ada\x00@example.com", "ada@exa\nmple.com"]
    for recipient in bad:
        response = await client.post(path, json=wrap({**EMAIL, "recipient_email": recipient}))
        problem = assert_problem(response, 422)
        assert [e["loc"] for e in problem["errors"]] == [[*loc, "recipient_email"]], repr(recipient)
    assert (await client.get("/queues")).json() == []


@pytest.mark.parametrize(("path", "wrap", "loc"), ENDPOINTS)
async def test_a_tab_and_non_ascii_text_in_the_subject_are_accepted(
    path: str, wrap: Any, loc: list[str | int], client: httpx.AsyncClient
) -> None:
    for subject in ["Report\tQ3", "Grüße — 你好"]:
        response = await client.post(path, json=wrap({**EMAIL, "subject": subject}))
        assert response.status_code == 202, response.text


async def test_the_subject_schema_states_the_rule(client: httpx.AsyncClient) -> None:
    """Clients (and the schemathesis fuzz run) read the rule from the schema instead of meeting a 422."""
    tasks = {t["name"]: t for t in (await client.get("/tasks")).json()}
    subject = tasks["send_email"]["args_schema"]["properties"]["subject"]
    assert "pattern" in subject
    # JSON Schema patterns are searched for, not matched whole ("Hi\n" caught a pattern ending in "$").
    pattern = re.compile(subject["pattern"])
    assert pattern.search("Report\tQ3")
    assert not [s for s in BAD_SUBJECTS if pattern.search(s)]
