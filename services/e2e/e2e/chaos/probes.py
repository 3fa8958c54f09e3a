"""Special requests sent beside the load (scenarios 9, 10, 11), each checked after the drain.

- poison: ``debug.crash`` kills the worker process that runs it, on every attempt; it must end
  dead-lettered after its attempts while the load flows on (Docker's restart policy restarts the
  worker, as in production);
- timeout: a job sleeping past its ``timeout_seconds`` must end failed with the reason ``timeout``,
  never completed;
- idempotency: one body sent four times at once with one ``Idempotency-Key`` must name one job
  (and run once: it joins the load's history, so the checker counts its executions); the same key
  with another body must be refused.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from e2e.chaos.checker import Outcome, Request
from e2e.chaos.load import REQUEST_TIMEOUT, Load
from e2e.harness import Api

POISON_ATTEMPTS = 3
#: Poison jobs per scenario, whatever its size. Each kills a worker on each of its attempts, and
#: Docker backs off (doubling, up to a minute) before restarting a container that died within 10 s
#: of its start: one every 3 s, as the other probes, sent 40 into a 20,000-job run, and 120 kills in
#: two minutes left every replica in that back-off, the fleet down for tens of minutes (a crash loop
#: of the test's making, not a property of the queue). Spread over the load, a handful of them kill
#: each replica about every 20 s: the poison is dead-lettered and the rest of the load flows on.
POISON_JOBS = 6
#: Seconds between two probes of the other kinds (cheap: they kill nothing).
PROBE_INTERVAL = 3.0


@dataclass(slots=True)
class Probes:
    api: Api
    load: Load
    kind: str  # "poison", "timeout" or "idempotency"
    job_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def interval(self, duration: float) -> float:
        """Seconds between two probes over a load of ``duration`` seconds."""
        if self.kind == "poison":
            return max(PROBE_INTERVAL, duration / POISON_JOBS)
        return PROBE_INTERVAL

    def send(self) -> None:
        """One probe of this kind (called every few seconds by the fault scheduler)."""
        n = self.counts["sent"]
        self.counts["sent"] += 1
        tag = f"{self.load.prefix}-{self.kind}{n}"
        if self.kind == "poison":
            self._accept({"task": "debug.crash", "args": {"exit_code": 137}, "max_attempts": POISON_ATTEMPTS})
        elif self.kind == "timeout":
            args = {"tag": tag, "sleep_ms": 5000}
            self._accept({"task": "debug.record", "args": args, "timeout_seconds": 1, "max_attempts": 2})
        else:
            self._idempotent(tag)

    def _accept(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> str | None:
        try:
            response = self.api.request("POST", "/jobs", json=body, headers=headers, timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            return None  # an outage is the load's business: this probe is just not counted
        if response.status_code not in (200, 202):
            return None
        job_id: str = response.json()["id"]
        if headers is None:
            with self._lock:
                self.job_ids.append(job_id)
        return job_id

    def _idempotent(self, tag: str) -> None:
        key = uuid.uuid4().hex
        body = {"task": "debug.record", "args": {"tag": tag, "sleep_ms": 20}}
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda _: self._accept(body, {"Idempotency-Key": key}), range(4)))
        named = {i for i in ids if i is not None}
        if len(named) > 1:
            self.problems.append(f"one Idempotency-Key named {len(named)} jobs: {sorted(named)}")
        other = {"task": "debug.record", "args": {"tag": tag + "x", "sleep_ms": 20}}
        try:
            refused = self.api.request("POST", "/jobs", json=other, headers={"Idempotency-Key": key})
        except requests.RequestException:
            refused = None
        if refused is not None and refused.status_code < 400:
            self.problems.append(f"a reused key with another body got {refused.status_code}")
        if named:
            with self._lock:
                self.load.history.append(Request(tag, Outcome.ACCEPTED, named.pop(), 202))

    def verify(self) -> list[str]:
        """After the drain: each poison and timeout job failed for the right reason."""
        problems = list(self.problems)
        for job_id in self.job_ids:
            job = self.api.job(job_id)
            error = job.get("error") or {}
            if job["status"] != "failed":
                problems.append(f"{self.kind} job {job_id} ended {job['status']}, expected failed")
            elif self.kind == "timeout" and "timeout" not in (error.get("reason"), error.get("type")):
                problems.append(f"timeout job {job_id} failed with {error}, expected reason timeout")
        if not self.counts["sent"]:
            problems.append(f"no {self.kind} probe was sent")
        return problems
