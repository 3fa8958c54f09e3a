"""taskq_http_request_duration_seconds labels a request by its route template and status, whoever
answered it: the fast path (no FastAPI routing), the token guard (401 before routing), a routed
endpoint, or nothing (404: one "(unmatched)" label, never the raw path)."""

from __future__ import annotations

import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families

from producer.http_metrics import UNMATCHED
from producer.testing import make_settings, serve
from taskq.localserver import LocalRedis

TOKEN = "t" * 32
JOB = {"task": "debug.noop"}
UNKNOWN_ID = "00000000-0000-7000-8000-000000000000"


async def test_each_request_is_counted_under_its_route_template(
    redis_server: LocalRedis, prefix: str
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with serve(make_settings(redis_server.url, prefix, api_token=TOKEN)) as client:
        for _ in range(3):
            assert (await client.post("/jobs", json=JOB, headers=auth)).status_code == 202  # fast path
        assert (await client.post("/jobs", json=JOB)).status_code == 401
        assert (await client.get(f"/jobs/{UNKNOWN_ID}")).status_code == 401
        assert (await client.get(f"/jobs/{UNKNOWN_ID}", headers=auth)).status_code == 404
        assert (await client.get("/no/such/thing/42", headers=auth)).status_code == 404

        want = {
            ("POST", "/jobs", "202"): 3,
            ("POST", "/jobs", "401"): 1,
            ("GET", "/jobs/{job_id}", "401"): 1,
            ("GET", "/jobs/{job_id}", "404"): 1,
            ("GET", UNMATCHED, "404"): 1,
        }
        counts: dict[tuple[str, str, str], float] = {}
        deadline = time.monotonic() + 10
        while True:  # the counts reach Redis within a flush interval (1 s)
            text = (await client.get("/metrics")).text
            counts = {
                (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
                for family in text_string_to_metric_families(text)
                if family.name == "taskq_http_request_duration_seconds"
                for s in family.samples
                if s.name.endswith("_count")
            }
            if all(counts.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert {k: v for k, v in counts.items() if k[1] != "/metrics"} == want
