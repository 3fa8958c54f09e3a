"""Hypothesis stateful test: random sequences of enqueue / claim / heartbeat / complete / fail /
expire / release / cancel / dead-letter retry against a simple model. After every step each job is
in exactly one state, in exactly the one set that state implies, and the stats agree with the jobs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule
from redis.asyncio import Redis

from taskq import Ack, InvalidTransition, JobError, JobStatus, QueueConfig, Taskq
from taskq.localserver import LocalRedis

QUEUE = "sm"
T = TypeVar("T")


@dataclass
class ModelJob:
    status: JobStatus
    priority: int
    max_attempts: int
    attempts: int = 0
    token: int | None = None
    cancel_requested: bool = False


class QueueMachine(RuleBasedStateMachine):
    url: str = ""
    jobs_bundle = Bundle("jobs")

    @initialize()
    def setup(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.redis = Redis.from_url(self.url)
        # Backoff 0: a retried job is due at once, so claim promotes it deterministically.
        self.taskq = Taskq(
            self.redis,
            QueueConfig.of(
                taskq_prefix=f"sm{uuid.uuid4().hex[:10]}", retry_backoff_base_seconds=0, queues="*"
            ),
        )
        self.model: dict[str, ModelJob] = {}
        self.enqueued = 0
        self.stale_tokens: dict[str, int] = {}

    def teardown(self) -> None:
        if hasattr(self, "loop"):
            self.loop.run_until_complete(self.redis.aclose())
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def running(self) -> list[str]:
        return sorted(i for i, j in self.model.items() if j.status is JobStatus.RUNNING)

    @rule(target=jobs_bundle, priority=st.integers(0, 9), max_attempts=st.integers(1, 3))
    def enqueue(self, priority: int, max_attempts: int) -> str:
        enq = self.run(
            self.taskq.enqueue("debug.noop", queue=QUEUE, priority=priority, max_attempts=max_attempts)
        )
        self.model[enq.id] = ModelJob(JobStatus.QUEUED, priority, max_attempts)
        self.enqueued += 1
        return str(enq.id)

    @rule(n=st.integers(1, 4))
    def claim(self, n: int) -> None:
        claimable = [i for i, j in self.model.items() if j.status in (JobStatus.QUEUED, JobStatus.SCHEDULED)]
        batch = self.run(self.taskq.claim(QUEUE, "w", n))
        # Claim promotes every due scheduled job (backoff 0: all of them) on its way.
        for job in self.model.values():
            if job.status is JobStatus.SCHEDULED:
                job.status = JobStatus.QUEUED
        assert len(batch.jobs) == min(n, len(claimable))
        best = max((self.model[i].priority for i in claimable), default=None)
        for k, claimed in enumerate(batch.jobs):
            job = self.model[claimed.id]
            assert claimed.id in claimable
            if k == 0:
                assert job.priority == best, "claim did not take the most urgent job first"
            job.status = JobStatus.RUNNING
            job.attempts += 1
            assert claimed.attempts == job.attempts
            if job.token is not None:
                self.stale_tokens[claimed.id] = job.token
            job.token = claimed.token

    @precondition(lambda self: self.running())
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.running()))
        job = self.model[job_id]
        assert job.token is not None
        codes = self.run(self.taskq.heartbeat({QUEUE: [(job_id, job.token)]}))
        assert codes[(job_id, job.token)] == (3 if job.cancel_requested else 1)

    @precondition(lambda self: self.stale_tokens)
    @rule(data=st.data())
    def late_ack_from_old_holder(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.stale_tokens)))
        ok, _ = self.run(self.taskq.complete(QUEUE, [Ack(job_id, self.stale_tokens[job_id], '"late"')]))
        assert ok == [False]

    @precondition(lambda self: self.running())
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.running()))
        job = self.model[job_id]
        assert job.token is not None
        ok, _ = self.run(self.taskq.complete(QUEUE, [Ack(job_id, job.token, cancelled=job.cancel_requested)]))
        assert ok == [True]
        job.status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.SUCCEEDED
        self._retire(job_id)

    @precondition(lambda self: self.running())
    @rule(data=st.data(), retryable=st.booleans())
    def fail(self, data: st.DataObject, retryable: bool) -> None:
        job_id = data.draw(st.sampled_from(self.running()))
        job = self.model[job_id]
        assert job.token is not None
        status = self.run(
            self.taskq.fail(QUEUE, job_id, job.token, JobError(type="E", message="m"), retryable=retryable)
        )
        retry = retryable and job.attempts < job.max_attempts
        expected = JobStatus.FAILED
        if retry:
            expected = JobStatus.CANCELLED if job.cancel_requested else JobStatus.SCHEDULED
        assert status is expected
        job.status = expected
        job.cancel_requested = False
        self._retire(job_id)

    @precondition(lambda self: self.running())
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        """The holder dies: its lease runs out and the reaper takes the job back."""
        job_id = data.draw(st.sampled_from(self.running()))
        job = self.model[job_id]
        self.run(self._expire_lease(job_id))
        result = self.run(self.taskq.reap(QUEUE))
        if job.cancel_requested:
            assert (result.requeued, result.dead) == (0, 0)
            job.status = JobStatus.CANCELLED
        elif job.attempts >= job.max_attempts:
            assert (result.requeued, result.dead) == (0, 1)
            job.status = JobStatus.FAILED
        else:
            assert (result.requeued, result.dead) == (1, 0)
            job.status = JobStatus.QUEUED
        self._retire(job_id)

    @precondition(lambda self: self.running())
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.running()))
        job = self.model[job_id]
        assert job.token is not None
        assert self.run(self.taskq.release(QUEUE, [(job_id, job.token)])) == 1
        job.attempts -= 1
        job.status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.QUEUED
        self._retire(job_id)

    @rule(job_id=jobs_bundle)
    def cancel(self, job_id: str) -> None:
        job = self.model[job_id]
        if job.status.terminal:
            with pytest.raises(InvalidTransition):
                self.run(self.taskq.cancel(job_id))
            return
        status = self.run(self.taskq.cancel(job_id))
        if job.status is JobStatus.RUNNING:
            assert status is JobStatus.RUNNING
            job.cancel_requested = True
        else:
            assert status is JobStatus.CANCELLED
            job.status = JobStatus.CANCELLED

    @precondition(lambda self: any(j.status is JobStatus.FAILED for j in self.model.values()))
    @rule(data=st.data())
    def retry_dead(self, data: st.DataObject) -> None:
        job_id = data.draw(
            st.sampled_from(sorted(i for i, j in self.model.items() if j.status is JobStatus.FAILED))
        )
        self.run(self.taskq.retry_dead(job_id))
        job = self.model[job_id]
        job.status, job.attempts = JobStatus.QUEUED, 0

    async def _expire_lease(self, job_id: str) -> None:
        await self.redis.zadd(self.taskq.queue_keys(QUEUE).active, {job_id: 0})

    def _retire(self, job_id: str) -> None:
        job = self.model[job_id]
        if job.token is not None:
            self.stale_tokens[job_id] = job.token
        job.token = None
        if job.status is not JobStatus.RUNNING:
            job.cancel_requested = False

    @invariant()
    def every_job_in_exactly_one_place(self) -> None:
        if not hasattr(self, "taskq"):
            return
        qk = self.taskq.queue_keys(QUEUE)
        sets = {
            JobStatus.QUEUED: qk.pending,
            JobStatus.SCHEDULED: qk.scheduled,
            JobStatus.RUNNING: qk.active,
            JobStatus.FAILED: qk.dead,
        }

        async def snapshot() -> tuple[dict[str, set[str]], dict[str, Any]]:
            members: dict[str, set[str]] = {}
            for status, key in sets.items():
                members[status.value] = {
                    m.decode() for m in await self.redis.zrange(key, 0, -1) if isinstance(m, bytes)
                }
            statuses: dict[str, Any] = {}
            for job_id in self.model:
                statuses[job_id] = await self.redis.hget(qk.job(job_id), "status")
            return members, statuses

        members, statuses = self.run(snapshot())
        for job_id, job in self.model.items():
            assert statuses[job_id] == job.status.value.encode(), (job_id, statuses[job_id], job.status)
            places = [s for s, ids in members.items() if job_id in ids]
            expected = [job.status.value] if job.status in sets else []
            assert places == expected, (job_id, places, expected)
        assert set().union(*members.values()) <= set(self.model), "a set holds an id the model never made"

    @invariant()
    def stats_agree_with_jobs(self) -> None:
        if not hasattr(self, "taskq"):
            return
        stats = self.run(self.taskq.stats(QUEUE)) if self.model else None
        if stats is None:
            return
        count = {s: sum(1 for j in self.model.values() if j.status is s) for s in JobStatus}
        assert stats.pending + stats.scheduled == count[JobStatus.QUEUED] + count[JobStatus.SCHEDULED]
        assert stats.running == count[JobStatus.RUNNING]
        assert stats.dead == count[JobStatus.FAILED]
        assert stats.counters.get("enqueued", 0) == self.enqueued


def test_queue_state_machine(redis_server: LocalRedis) -> None:
    QueueMachine.url = redis_server.url
    QueueMachine.TestCase.settings = settings(
        max_examples=75,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    QueueMachine.TestCase().runTest()
