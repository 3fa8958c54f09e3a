"""What the e2e scenarios drive: the HTTP API, the SMTP sink's mailbox, and the project's containers.

The suite runs in a container of the same compose project (compose.test.yaml). It speaks HTTP to the
producer and the sink, and controls containers through the Docker API (the socket is mounted in the
test overlay only). It finds its own project from its own container's labels, so any project name
works and two runs never touch each other's containers.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import docker
import requests
from docker.models.containers import Container

from e2e.smtp_sink import Received as Mail

T = TypeVar("T")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds.
    The suite's only way to wait: a condition with a deadline, never a bare sleep."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except (requests.RequestException, docker.errors.APIError) as exc:
            last = exc  # a transient error while polling is just another "not yet"
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Api:
    """The producer's HTTP API, as a client with the deployment's token would call it."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, *, timeout: float = 10, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base_url + path, timeout=timeout, **kwargs)

    def submit(self, task: str, args: dict[str, Any], **fields: Any) -> str:
        response = self.request("POST", "/jobs", json={"task": task, "args": args, **fields})
        assert response.status_code == 202, (response.status_code, response.text)
        job_id: str = response.json()["id"]
        return job_id

    def job(self, job_id: str, *, wait: float | None = None) -> dict[str, Any]:
        params = {"wait": int(max(1, min(60, wait)))} if wait else None
        timeout = 10 + (params["wait"] if params else 0)
        response = self.request("GET", f"/jobs/{job_id}", params=params, timeout=timeout)
        assert response.status_code == 200, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    def wait_finished(self, job_ids: Iterable[str], *, timeout: float) -> dict[str, dict[str, Any]]:
        """Every job in a terminal state, each waited on with ``?wait=`` (no polling loop on our side)."""
        deadline = time.monotonic() + timeout
        done: dict[str, dict[str, Any]] = {}
        for job_id in job_ids:
            while True:
                left = deadline - time.monotonic()
                job = self.job(job_id, wait=max(1.0, left))
                if job["status"] in TERMINAL:
                    done[job_id] = job
                    break
                if left <= 0:
                    raise AssertionError(f"job {job_id} still {job['status']} after {timeout:.0f}s: {job}")
        return done

    def queue(self, name: str = "default") -> dict[str, Any]:
        response = self.request("GET", "/queues")
        assert response.status_code == 200, (response.status_code, response.text)
        for view in response.json():
            if view["queue"] == name:
                found: dict[str, Any] = view
                return found
        return {"queue": name, "pending": 0, "scheduled": 0, "running": 0, "dead": 0}

    def idle(self, name: str = "default") -> bool:
        view = self.queue(name)
        return bool(view["pending"] == 0 and view["scheduled"] == 0 and view["running"] == 0)

    def workers(self) -> list[dict[str, Any]]:
        response = self.request("GET", "/workers")
        assert response.status_code == 200, (response.status_code, response.text)
        workers: list[dict[str, Any]] = response.json()
        return workers


class Sink:
    """The SMTP sink's mailbox (services/e2e/e2e/smtp_sink.py), read over its small HTTP API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def messages(self) -> list[Mail]:
        response = requests.get(f"{self.base_url}/messages", timeout=5)
        response.raise_for_status()
        return [Mail(**item) for item in response.json()]

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.messages() if address in m.rcpt_tos]

    def clear(self) -> None:
        requests.delete(f"{self.base_url}/messages", timeout=5).raise_for_status()


class Fleet:
    """The containers of this compose project, through the Docker API."""

    def __init__(self) -> None:
        self.docker = docker.from_env(timeout=60)
        # Compose sets each container's host name to its short id: that is how we find ourselves.
        me = self.docker.containers.get(socket.gethostname())
        self.project: str = me.labels["com.docker.compose.project"]

    def containers(self, service: str) -> list[Container]:
        found = self.docker.containers.list(
            all=True,
            filters={
                "label": [
                    f"com.docker.compose.project={self.project}",
                    f"com.docker.compose.service={service}",
                    "com.docker.compose.oneoff=False",
                ]
            },
        )
        return sorted(found, key=lambda c: int(c.labels.get("com.docker.compose.container-number", "0")))

    def one(self, service: str) -> Container:
        (container,) = self.containers(service)
        return container

    @staticmethod
    def state(container: Container) -> dict[str, Any]:
        container.reload()
        state: dict[str, Any] = container.attrs["State"]
        return state

    def healthy(self, container: Container) -> bool:
        state = self.state(container)
        return bool(state["Running"]) and state.get("Health", {}).get("Status") == "healthy"

    def wait_healthy(self, containers: Iterable[Container], *, timeout: float = 90) -> None:
        for container in containers:
            wait_for(partial(self.healthy, container), timeout=timeout, what=f"{container.name} healthy")

    def container_of(self, worker_id: str) -> Container:
        """The container a worker id belongs to: worker ids start with the host name (short id)."""
        for container in self.containers("worker"):
            if worker_id.startswith(container.short_id):
                return container
        raise AssertionError(f"no worker container for worker id {worker_id!r}")

    @staticmethod
    def stop_all(containers: list[Container], *, timeout: float = 15) -> None:
        """`docker stop` (SIGTERM, then SIGKILL after ``timeout``), all at once, as `compose scale` does."""
        if containers:
            with ThreadPoolExecutor(len(containers)) as pool:
                list(pool.map(lambda c: c.stop(timeout=timeout), containers))

    def set_workers(self, count: int) -> list[Container]:
        """Exactly ``count`` worker replicas running and healthy (a fresh heartbeat), the rest stopped."""
        replicas = self.containers("worker")
        assert len(replicas) >= count, f"compose.test.yaml runs {len(replicas)} worker replicas, need {count}"
        keep, rest = replicas[:count], replicas[count:]
        self.stop_all([c for c in rest if self.state(c)["Running"]])
        for container in keep:
            if not self.state(container)["Running"]:
                container.start()
        self.wait_healthy(keep)
        return keep


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"{name} is not set (compose.test.yaml sets it for the e2e container)")
    return value
