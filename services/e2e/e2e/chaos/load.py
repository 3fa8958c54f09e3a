"""The chaos load: paced POST /jobs of debug.record jobs, every request and its outcome recorded.

Each job carries a tag of the client's own (``<prefix>-<n>``), the key the checker joins requests and
ledger lines on: a request whose reply never came is still matched to what ran."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

from e2e.chaos.checker import MISSING, Outcome, Request
from e2e.harness import Api

#: Read timeout of one request: past it the outcome is "unknown" (the job may exist).
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of the job mix (the rest are no-ops): short sleeps, planned failures, long jobs."""

    sleep: float = 0.45
    failing: float = 0.10
    long: float = 0.05
    long_ms: tuple[int, int] = (500, 2500)
    max_attempts: int = 25  # many kills in a row must not dead-letter a healthy job
    timeout_seconds: float | None = None

    def job(self, tag: str, rng: random.Random) -> tuple[dict[str, Any], int]:
        """The request body for one job, and how many attempts it is told to fail."""
        roll = rng.random()
        args: dict[str, Any] = {"tag": tag}
        fail_attempts = 0
        if roll < self.long:
            args["sleep_ms"] = rng.randint(*self.long_ms)
        elif roll < self.long + self.failing:
            args["sleep_ms"] = rng.randint(10, 100)
            fail_attempts = args["fail_attempts"] = 1
        elif roll < self.long + self.failing + self.sleep:
            args["sleep_ms"] = rng.randint(10, 100)
        body: dict[str, Any] = {"task": "debug.record", "args": args, "max_attempts": self.max_attempts}
        if self.timeout_seconds is not None:
            body["timeout_seconds"] = self.timeout_seconds
        return body, fail_attempts


@dataclass(slots=True)
class Load:
    api: Api
    prefix: str
    jobs: int
    duration: float  # seconds over which the jobs are spread (0: as fast as the API takes them)
    mix: Mix = field(default_factory=Mix)
    threads: int = 8
    seed: int = 0
    history: list[Request] = field(default_factory=list)
    #: 5xx other than 503 (a 500 is a bug: the promise is 503 during an outage).
    server_errors: int = 0
    refused_latency: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        """Send every job (blocking), paced evenly over ``duration``."""
        rng = random.Random(self.seed)
        bodies = [self.mix.job(f"{self.prefix}-{n}", rng) for n in range(self.jobs)]
        started = time.monotonic()
        interval = self.duration / self.jobs if self.jobs else 0.0

        def send(n: int) -> None:
            # Pacing shapes the load (faults must meet a steady stream); it synchronises nothing.
            delay = started + n * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body, fail_attempts = bodies[n]
            self._send(body, fail_attempts)

        with ThreadPoolExecutor(self.threads, thread_name_prefix="load") as pool:
            list(pool.map(send, range(self.jobs)))
        self.elapsed = time.monotonic() - started

    def _send(self, body: dict[str, Any], fail_attempts: int) -> None:
        tag = body["args"]["tag"]
        sent = time.monotonic()
        try:
            response = self.api.request("POST", "/jobs", json=body, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            # Never connected (the API is down, or restarting): nothing was sent, nothing promised.
            # Anything later (a reset mid-request, a read timeout) may have enqueued: unknown.
            outcome = Outcome.REFUSED if _never_connected(exc) else Outcome.UNKNOWN
            request = Request(tag, outcome, fail_attempts=fail_attempts)
        else:
            code = response.status_code
            if code == 202:
                request = Request(tag, Outcome.ACCEPTED, response.json()["id"], code, fail_attempts)
            elif code < 500 or code == 503:
                request = Request(tag, Outcome.REFUSED, None, code, fail_attempts)
                with self._lock:
                    self.refused_latency.append(time.monotonic() - sent)
            else:  # a 500 may or may not have enqueued: unknown, and counted as a bug
                request = Request(tag, Outcome.UNKNOWN, None, code, fail_attempts)
                with self._lock:
                    self.server_errors += 1
        with self._lock:
            self.history.append(request)

    def accepted_ids(self) -> list[str]:
        return [r.job_id for r in self.history if r.outcome is Outcome.ACCEPTED and r.job_id]


def _never_connected(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3's NewConnectionError (and its NameResolutionError): the TCP connection never opened.
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def final_statuses(api: Api, job_ids: list[str], *, threads: int = 8) -> dict[str, str]:
    """Each job's status after the drain (``MISSING`` on a 404: Redis no longer knows it)."""

    def status(job_id: str) -> tuple[str, str]:
        for _ in range(5):  # a reply lost to load is retried; a lost job is a 404, not an error
            try:
                response = api.request("GET", f"/jobs/{job_id}", timeout=REQUEST_TIMEOUT)
            except requests.RequestException:
                continue
            if response.status_code == 404:
                return job_id, MISSING
            if response.status_code == 200:
                return job_id, str(response.json()["status"])
        raise AssertionError(f"GET /jobs/{job_id} kept failing")

    with ThreadPoolExecutor(threads, thread_name_prefix="status") as pool:
        return dict(pool.map(status, job_ids))
