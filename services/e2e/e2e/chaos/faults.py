"""Faults on the running compose stack, through the Docker API, each counted.

Every fault runs in a background thread until ``stop()``; the counts feed the duplicate bound (a
worker killed or cut off mid-job may have finished jobs it could not ack, at most its concurrency)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import docker
from docker.models.containers import Container

from e2e.chaos.checker import Execution
from e2e.harness import Fleet, wait_for

log = logging.getLogger("chaos")


@dataclass(slots=True)
class Faults:
    fleet: Fleet
    workers: list[Container]
    rng: random.Random
    counts: Counter[str] = field(default_factory=Counter)
    #: Exit codes of workers stopped with SIGTERM (graceful stop must exit 0, never 137).
    stop_exit_codes: list[int] = field(default_factory=list)
    #: When the last fault was healed (time.monotonic()): recovery is measured from there.
    healed_at: float | None = None
    #: Verdicts a fault needs after the drain (given the ledger's executions): each returns failures.
    checks: list[Callable[[list[Execution]], list[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def every(self, seconds: float, action: Callable[[], None], *, first: float | None = None) -> None:
        """Run ``action`` every ``seconds`` (jittered ±50%) until ``stop()``."""

        def loop() -> None:
            wait = first if first is not None else self._jitter(seconds)
            while not self._stop.wait(wait):
                try:
                    action()
                except (docker.errors.APIError, AssertionError) as exc:
                    log.warning("fault %s failed: %s", action.__name__, exc)
                    self.counts["fault_errors"] += 1
                self.healed_at = time.monotonic()
                wait = self._jitter(seconds)

        thread = threading.Thread(target=loop, name=f"fault-{action.__name__}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """Stop injecting, then bring every container of the scenario back up."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        redis = self.fleet.one("redis")
        for container in [redis, self.fleet.one("producer"), *self.workers]:
            self._ensure_running(container)
        self.fleet.wait_healthy([redis, *self.workers], timeout=120)

    def hold(self, seconds: float) -> bool:
        """Keep a fault on for ``seconds``, or less if the scenario stops; True if it stopped."""
        return self._stop.wait(seconds)

    def _jitter(self, seconds: float) -> float:
        return seconds * self.rng.uniform(0.5, 1.5)

    def _pick(self) -> Container:
        with self._lock:
            return self.rng.choice(self.workers)

    def _ensure_running(self, container: Container) -> None:
        # The restart policy may already have brought it back; starting a running container is a no-op.
        if not Fleet.state(container)["Running"]:
            try:
                container.start()
            except docker.errors.APIError as exc:
                log.warning("start %s: %s", container.name, exc)

    def _dead(self, container: Container) -> None:
        wait_for(lambda: not Fleet.state(container)["Running"], timeout=30, what=f"{container.name} dead")

    # -- the faults ------------------------------------------------------------------------------

    def kill_worker(self) -> None:
        """SIGKILL a random worker mid-job, then start it again (what a restart policy does)."""
        container = self._pick()
        container.kill(signal="SIGKILL")
        self.counts["worker_sigkill"] += 1
        self._dead(container)
        self._ensure_running(container)

    def term_worker(self) -> None:
        """SIGTERM a random worker (``docker stop``): it finishes or hands back its jobs, exits 0."""
        # Only a worker that is up: one stopped while Python is still starting has no SIGTERM
        # handler yet and exits 143 (a loaded host once took over 5 s to start one).
        with self._lock:
            up = [c for c in self.workers if self.fleet.healthy(c)]
        if not up:
            return
        container = self.rng.choice(up)
        container.stop(timeout=15)
        self.counts["worker_sigterm"] += 1
        self.stop_exit_codes.append(int(Fleet.state(container)["ExitCode"]))
        self._ensure_running(container)

    def kill_redis(self) -> None:
        """SIGKILL Redis (no AOF flush on the way out), then restart it on its volume."""
        redis = self.fleet.one("redis")
        redis.kill(signal="SIGKILL")
        self.counts["redis_sigkill"] += 1
        self._dead(redis)
        self._ensure_running(redis)
        self.fleet.wait_healthy([redis], timeout=60)

    def kill_redis_then_start(self, replicas: list[Container]) -> Callable[[], None]:
        """The negative control's fault: Redis SIGKILLed while no worker runs (everything accepted so
        far is pending), then ``replicas`` started to drain what comes after."""

        def kill_redis_then_start() -> None:
            self.kill_redis()
            for container in replicas:
                self._ensure_running(container)
            with self._lock:
                self.workers = list(replicas)

        return kill_redis_then_start

    def kill_producer(self) -> None:
        """SIGKILL the API mid-request: requests in flight become unknowns."""
        producer = self.fleet.one("producer")
        producer.kill(signal="SIGKILL")
        self.counts["producer_sigkill"] += 1
        self._dead(producer)
        self._ensure_running(producer)

    def cut_worker(self, seconds: float) -> Callable[[], None]:
        """Disconnect a random worker from the project network for ``seconds`` (longer than the lease:
        its jobs are reaped and run elsewhere), then reconnect it."""

        def cut_worker() -> None:
            container = self._pick()
            Fleet.state(container)  # reload: attrs name the one network compose attached it to
            (network_name,) = container.attrs["NetworkSettings"]["Networks"]
            network = self.fleet.docker.networks.get(network_name)
            network.disconnect(container)
            self.counts["network_cut"] += 1
            try:
                self._stop.wait(seconds)  # the cut lasts this long even if the load ends meanwhile
            finally:
                network.connect(container)

        return cut_worker

    def churn(self, replicas: list[Container], steps: list[int], hold: float) -> None:
        """Scale the workers through ``steps`` (e.g. 1, 6, 1), holding each for ``hold`` seconds;
        scaling down is a graceful stop, as ``compose up --scale`` does it."""

        def churn() -> None:
            for count in steps:
                started = time.monotonic()
                keep, rest = replicas[:count], replicas[count:]
                running = [c for c in rest if Fleet.state(c)["Running"]]
                Fleet.stop_all(running)
                self.stop_exit_codes.extend(int(Fleet.state(c)["ExitCode"]) for c in running)
                for container in keep:
                    self._ensure_running(container)
                # As `compose up --wait --scale`: a step counts once its workers are up. A worker
                # stopped while Python is still starting has no SIGTERM handler yet and exits 143.
                self.fleet.wait_healthy(keep, timeout=120)
                with self._lock:
                    self.workers = keep
                self.counts["scale_steps"] += 1
                self.healed_at = time.monotonic()
                if self._stop.wait(max(0.0, hold - (time.monotonic() - started))):
                    return

        thread = threading.Thread(target=churn, name="fault-churn", daemon=True)
        self._threads.append(thread)
        thread.start()
