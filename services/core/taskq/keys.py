"""Every Redis key taskq uses, spelled in exactly one place.

Per-queue keys carry the queue name in braces (``taskq:{emails}:pending``). The braces are a Redis
Cluster hash tag: every key of one queue hashes to one slot, so each Lua script, which only ever
touches the keys of one queue, stays legal on a cluster. Fleet-wide keys (the queue and worker
registries) are never touched from inside a script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@lru_cache(maxsize=4096)  # on every enqueue's path; only valid names are remembered (errors are not)
def validate_queue_name(name: str) -> str:
    """Queue names become part of keys: no braces, colons, globs or whitespace can get in."""
    if not QUEUE_NAME_RE.match(name):
        raise ValueError(
            "queue name must be 1-64 characters of letters, digits, '_', '.' or '-', starting with a "
            "letter or digit"
        )
    return name


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue. ``job_prefix`` + id is a job's hash (scripts build it the same way).

    Each key is computed once per instance (``Taskq`` keeps one instance per queue): they are on
    every call's path."""

    prefix: str
    queue: str

    @cached_property
    def base(self) -> str:
        return f"{self.prefix}:{{{self.queue}}}"

    @cached_property
    def pending(self) -> str:
        """ZSET of job ids ready to run, scored by priority band then enqueue time."""
        return f"{self.base}:pending"

    @cached_property
    def scheduled(self) -> str:
        """ZSET of job ids waiting for their time (delayed, or backing off), scored by due time in ms."""
        return f"{self.base}:scheduled"

    @cached_property
    def active(self) -> str:
        """ZSET of running job ids scored by lease deadline in ms: reaping is one range query."""
        return f"{self.base}:active"

    @cached_property
    def dead(self) -> str:
        """ZSET of dead-lettered job ids scored by the time they died, in ms."""
        return f"{self.base}:dead"

    @cached_property
    def marker(self) -> str:
        """ZSET with at most one member: idle workers block on it with BZPOPMIN, enqueue sets it."""
        return f"{self.base}:marker"

    @cached_property
    def paused(self) -> str:
        """STRING, present while the queue is paused: the claim scripts hand out no new job."""
        return f"{self.base}:paused"

    @cached_property
    def stats(self) -> str:
        """HASH of monotonically increasing counters (enqueued, succeeded, failed, dead, ...)."""
        return f"{self.base}:stats"

    @cached_property
    def hist(self) -> str:
        """HASH of the latency histograms (wait, run) per task, counted by the claim, complete and fail
        scripts. _histogram.lua derives this name from ``job_prefix``: keep the two in step."""
        return f"{self.base}:hist"

    @cached_property
    def token(self) -> str:
        """STRING counter handing out fencing tokens for leases."""
        return f"{self.base}:token"

    def claim(self, nonce: str) -> str:
        """STRING '<id> <token> ...' with a TTL of a lease: the jobs one claim call (named by its
        client's nonce) took, so a retry after a lost reply gets them instead of stranding them."""
        return f"{self.base}:claim:{nonce}"

    @cached_property
    def maintenance_lock(self) -> str:
        """STRING with a TTL: whoever sets it runs the reaper for this interval, fleet-wide."""
        return f"{self.base}:maint"

    @cached_property
    def events(self) -> str:
        """Pub/Sub channel: '<job id> <status>' lines (one or more per message) as jobs end."""
        return f"{self.base}:events"

    @cached_property
    def event_stream(self) -> str:
        """STREAM capped at ``events_max_len`` entries (MAXLEN ~): every state change of the queue's jobs,
        written by the script that makes it (``lua/_events.lua``); read by ``taskq.job_events``."""
        return f"{self.base}:stream"

    @cached_property
    def job_prefix(self) -> str:
        return f"{self.base}:job:"

    def job(self, job_id: str) -> str:
        """HASH of one job (its payload and its state)."""
        return f"{self.job_prefix}{job_id}"

    def idempotency(self, key: str) -> str:
        """STRING '<job id> <fingerprint>' with a TTL: a repeat of the key returns that job."""
        return f"{self.base}:idem:{key}"


@dataclass(frozen=True, slots=True)
class GlobalKeys:
    """Fleet-wide keys: plain commands only, never inside a script."""

    prefix: str

    @property
    def queues(self) -> str:
        """SET of every queue name that has ever had a job enqueued."""
        return f"{self.prefix}:queues"

    @property
    def workers(self) -> str:
        """ZSET of worker ids scored by their last heartbeat in ms."""
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        """HASH describing one worker, with a TTL of a few heartbeats."""
        return f"{self.prefix}:worker:{worker_id}"

    def idempotency(self, key: str) -> str:
        """STRING '<queue> <fingerprint>' with a TTL: the one request an Idempotency-Key names,
        whatever queue it went to (the queues' own records are per queue, in their slots)."""
        return f"{self.prefix}:idem:{key}"

    @property
    def http_metrics(self) -> str:
        """HASH of the API request-duration histograms, added to by every producer process."""
        return f"{self.prefix}:metrics:http"

    @property
    def events_pattern(self) -> str:
        """PSUBSCRIBE pattern matching every queue's events channel."""
        return f"{self.prefix}:{{*}}:events"

    def queue(self, queue: str) -> QueueKeys:
        return QueueKeys(self.prefix, queue)
