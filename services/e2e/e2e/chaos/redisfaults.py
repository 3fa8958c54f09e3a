"""Two faults on the way to Redis rather than on a container: latency on one worker's link (scenario
L, through the ``redis-link`` proxy of compose.chaos.yaml) and Redis at ``maxmemory`` (scenario M).

The linked worker is a clone of a ``worker`` replica, made through the Docker API when L starts and
removed when it ends: compose cannot extend a service across files (compose.test.yaml's worker
settings would have to be copied), and a container that exists only during L cannot disturb the
other scenarios. Only ``REDIS_URL`` differs from the replica it is cloned from."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import docker
from docker.models.containers import Container

from e2e.chaos.checker import Execution
from e2e.chaos.faults import Faults
from e2e.chaos.linkproxy import control
from e2e.harness import Fleet

log = logging.getLogger("chaos")

LINKED = "worker-linked"  # the clone's compose service label: `compose down` removes it with the rest
LINK_URL = "redis://redis-link:6379/0"  # compose.chaos.yaml's redis-link service, database 0 as REDIS_URL
LINK_CONTROL = ("redis-link", 7000)
#: Headroom above used memory when Redis is made full: a few enqueues fill it, then every one is refused.
FULL_MARGIN = 32 * 1024


def remove_linked(fleet: Fleet) -> None:
    """Stop (gracefully) and remove every linked worker of this project: none outlives scenario L."""
    for container in fleet.containers(LINKED):
        if Fleet.state(container)["Running"]:
            container.stop(timeout=15)
        container.remove(force=True)


def start_linked(fleet: Fleet, template: Container) -> Container:
    """A worker like ``template`` in every setting (image, env, mounts, hardening, healthcheck) but
    its Redis URL, which goes through the latency proxy; started and healthy."""
    api = fleet.docker.api
    attrs: dict[str, Any] = api.inspect_container(str(template.id))
    config = attrs["Config"]
    env = [e for e in config["Env"] if not e.startswith("REDIS_URL=")] + [f"REDIS_URL={LINK_URL}"]
    labels = {
        **config["Labels"],
        "com.docker.compose.service": LINKED,
        "com.docker.compose.container-number": "1",
    }
    created = api.create_container(
        image=config["Image"],
        command=config["Cmd"],
        entrypoint=config["Entrypoint"],
        environment=env,
        user=config["User"],
        working_dir=config["WorkingDir"] or None,
        labels=labels,
        healthcheck=config.get("Healthcheck"),
        stop_signal=config.get("StopSignal"),
        host_config=attrs["HostConfig"],  # mounts (the ledger), read-only, caps, init, network...
        name=f"{fleet.project}-{LINKED}-1",
    )
    api.start(created["Id"])
    container = fleet.docker.containers.get(created["Id"])
    fleet.wait_healthy([container], timeout=120)
    return container


def _fingerprint(container: Container) -> tuple[str, int, str]:
    state = Fleet.state(container)
    return container.id or "", int(container.attrs["RestartCount"]), str(state["StartedAt"])


def no_restarts(containers: list[Container]) -> Callable[[list[Execution]], list[str]]:
    """A check for after the drain: none of ``containers`` died or was restarted meanwhile."""
    before = {c.name: _fingerprint(c) for c in containers}

    def check(executions: list[Execution]) -> list[str]:
        changed = [c.name for c in containers if _fingerprint(c) != before[c.name]]
        return [f"restarted during the scenario: {changed}"] if changed else []

    return check


class Link:
    """The delay on the linked worker's link, set through the proxy's control port."""

    def __init__(self, faults: Faults, address: tuple[str, int] = LINK_CONTROL) -> None:
        self.faults = faults
        self.address = address
        # A stall and a plain latency window never overlap: one must not heal the other early.
        self._lock = threading.Lock()

    def _set(self, ms: float) -> None:
        try:
            control(self.address, f"delay {ms:.0f}")
        except (OSError, ValueError) as exc:
            raise AssertionError(f"redis-link control: {exc}") from exc

    def _window(self, ms: float, seconds: float, count: str) -> None:
        with self._lock:
            self._set(ms)
            self.faults.counts[count] += 1
            try:
                self.faults.hold(seconds)
            finally:
                self._set(0)

    def latency(self) -> None:
        """20-200 ms each way for 1-4 s: well below the lease, so nothing may run twice."""
        rng = self.faults.rng
        self._window(rng.uniform(20, 200), rng.uniform(1.0, 4.0), "link_delay")

    def stall(self, lease: float) -> Callable[[], None]:
        """1.5 leases each way for 2 leases: the worker's jobs are reclaimed and may run twice."""

        def link_stall() -> None:
            self._window(1.5 * lease * 1000, 2 * lease, "link_stall")

        return link_stall


def _cli(redis: Container, *args: str) -> str:
    # The redis service's REDISCLI_AUTH (compose.yaml) authenticates redis-cli without a password on argv.
    code, output = redis.exec_run(["redis-cli", *args])
    assert isinstance(output, bytes)  # not streamed
    text = output.decode("utf-8", "replace")
    if code != 0 or text.startswith(("ERR", "NOAUTH", "WRONGPASS")):
        raise AssertionError(f"redis-cli {' '.join(args[:2])}: exit {code}: {text.strip()}")
    return text


def _used_memory(redis: Container) -> int:
    for line in _cli(redis, "INFO", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":", 1)[1])
    raise AssertionError("INFO memory has no used_memory")


def redis_full(faults: Faults, *, hold: float, gap: float) -> Callable[[], None]:
    """Twice: ``maxmemory`` lowered to just above what Redis uses, held ``hold`` seconds, restored;
    ``gap`` seconds between the two windows."""

    def window() -> None:
        redis = faults.fleet.one("redis")
        original = _cli(redis, "CONFIG", "GET", "maxmemory").split()[1]
        used = _used_memory(redis)
        _cli(redis, "CONFIG", "SET", "maxmemory", str(used + FULL_MARGIN))
        faults.counts["redis_full"] += 1
        log.info("redis full: maxmemory %d (used %d) for %.0f s", used + FULL_MARGIN, used, hold)
        try:
            faults.hold(hold)
        finally:
            _cli(redis, "CONFIG", "SET", "maxmemory", original)

    def redis_full_twice() -> None:
        try:
            window()
            if not faults.hold(gap):
                window()
        except docker.errors.APIError as exc:
            raise AssertionError(f"docker exec on redis: {exc}") from exc

    return redis_full_twice
