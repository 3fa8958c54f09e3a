"""A task's own ``retry_backoff`` decides when its failed job runs again, not the deployment's
``RETRY_BACKOFF_*``: ``Taskq.fail(..., backoff=(base, max))`` schedules the retry by it, and without
it the deployment's default still applies."""

from __future__ import annotations

import random
import time

from redis.asyncio import Redis

from taskq import JobError, JobStatus, QueueConfig, Taskq

#: The deployment's default: far above a task's own, so a retry scheduled by it cannot pass for one.
SLOW_DEFAULT = {"retry_backoff_base_seconds": 30, "retry_backoff_max_seconds": 60}


def test_a_per_call_backoff_replaces_the_deployments_in_the_one_formula() -> None:
    config = QueueConfig.of(**SLOW_DEFAULT)
    rng = random.Random(7)
    for attempts, ceiling in [(1, 200), (2, 400), (3, 500), (9, 500)]:
        draws = [config.backoff_ms(attempts, rng, backoff=(0.2, 0.5)) for _ in range(2_000)]
        assert min(draws) >= ceiling // 2
        assert max(draws) <= ceiling
    assert config.backoff_ms(1, rng) >= 15_000  # no per-call backoff: the deployment's
    assert config.backoff_ms(4, rng, backoff=(0, 10)) == 0  # a task may ask for immediate retries


async def test_fail_schedules_the_retry_by_the_tasks_backoff(
    redis: Redis, prefix: str, queue_name: str
) -> None:
    taskq = Taskq(redis, QueueConfig.of(taskq_prefix=prefix, queues="*", **SLOW_DEFAULT))
    # The delay, seen from both sides of the call: Redis's clock read falls between these two, so
    # the delay lies in [score - after, score - before] however long a loaded host takes to answer.
    delay: dict[str, tuple[float, float]] = {}
    for backoff in [(0.2, 0.2), None]:
        enq = await taskq.enqueue("debug.fail", queue=queue_name, max_attempts=3)
        job = (await taskq.claim(queue_name, "w", 1)).jobs[0]
        error = JobError(type="ValueError", message="boom")
        before_ms = time.time() * 1000
        status = await taskq.fail(
            queue_name, job.id, job.token, error, attempts=job.attempts, backoff=backoff
        )
        after_ms = time.time() * 1000
        assert status is JobStatus.SCHEDULED
        score = await redis.zscore(taskq.queue_keys(queue_name).scheduled, enq.id)
        assert score is not None
        delay[str(backoff)] = (score - after_ms, score - before_ms)
    # Equal jitter over [100, 200] ms (a few ms of slack: Redis's clock is read in whole ms).
    low, high = delay["(0.2, 0.2)"]
    assert low <= 200 + 5, delay
    assert high >= 100 - 5, delay
    assert delay["None"][1] >= 15_000 - 5, delay
