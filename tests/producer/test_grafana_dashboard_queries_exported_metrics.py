"""The Grafana dashboard (deploy/observability) parses, uses the provisioned datasource, shows what
operators need (throughput, depth, wait and run percentiles, dead letters, API latency, workers), and
every metric its PromQL names is one the real producer's /metrics exports, scraped here after a job
ran (so a renamed metric breaks this test, not the dashboard in production)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from taskq import Ack, Taskq

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "observability"
DASHBOARD = ROOT / "grafana" / "dashboards" / "taskq.json"
METRIC = re.compile(r"\btaskq_[a-z0-9_]+\b")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",), "gauge": ("",)}


def queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return exprs + [v["definition"] for v in dashboard["templating"]["list"]]


async def exported_names(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.text):
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
        names |= {s.name for s in family.samples}
    return names


async def test_every_metric_the_dashboard_queries_is_exported(
    client: httpx.AsyncClient, taskq: Taskq
) -> None:
    job = (await client.post("/jobs", json={"task": "debug.noop"})).json()
    batch = await taskq.claim(job["queue"], "w1", 1)
    await taskq.complete(job["queue"], [Ack(batch.jobs[0].id, batch.jobs[0].token)], worker_id="w1")
    exported = await exported_names(client)
    assert {"taskq_job_wait_seconds_bucket", "taskq_http_request_duration_seconds_count"} <= exported

    dashboard = json.loads(DASHBOARD.read_text())
    used = {name for expr in queries(dashboard) for name in METRIC.findall(expr)}
    assert used, "the dashboard queries no taskq metric"
    assert used <= exported, f"queried, not exported: {sorted(used - exported)}"


def test_the_dashboard_shows_what_operators_need_from_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    provisioned = (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    uids = re.findall(r"^\s+uid: (\S+)$", provisioned, re.MULTILINE)  # no YAML parser in the dev tools
    assert len(uids) == 1, uids
    uid = uids[0]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
    text = "\n".join(queries(dashboard))
    for kind in ("wait", "run"):
        for q in ("0.5", "0.95", "0.99"):
            quantile = f"histogram_quantile({q}, sum by (le, queue, task) (rate(taskq_job_{kind}_seconds_"
            assert quantile in text
    for needed in (
        "taskq_jobs_succeeded_total", "taskq_queue_jobs", "taskq_jobs_dead_lettered_total",
        "taskq_http_request_duration_seconds_bucket", "taskq_workers_live",
    ):  # fmt: skip
        assert needed in text, needed
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
