"""Wait and run histograms are counted by the claim, complete and fail scripts themselves, in the
queue's histogram hash: one observation per execution started and per execution ended, per task,
tasks the registry does not know folded into one label, a replayed claim not counted twice, and a
delayed job's wait measured from when it became due."""

from __future__ import annotations

import asyncio
import time

from taskq import Ack, JobError, Taskq
from taskq.histograms import BOUNDS_SECONDS, OTHER_TASK, Histogram, JobLatency, job_latencies

KNOWN = {"report.a", "mail.b"}


def by_key(latencies: list[JobLatency]) -> dict[tuple[str, str], Histogram]:
    return {(lat.kind, lat.task): lat.histogram for lat in latencies}


def assert_prometheus_shape(h: Histogram) -> None:
    buckets = h.cumulative()
    counts = [n for _, n in buckets]
    assert counts == sorted(counts), "cumulative buckets never go down"
    assert buckets[-1] == ("+Inf", float(h.count))
    assert len(buckets) == len(BOUNDS_SECONDS) + 1
    assert h.sum >= 0


async def test_each_execution_is_counted_once_per_task(taskq: Taskq, queue_name: str) -> None:
    ids = {}
    for task, n in (("report.a", 6), ("mail.b", 4), ("stray.task", 2)):
        ids[task] = [(await taskq.enqueue(task, {}, queue=queue_name, max_attempts=1)).id for _ in range(n)]
    batch = await taskq.claim(queue_name, "w1", 20)
    assert len(batch.jobs) == 12
    tokens = {job.id: job.token for job in batch.jobs}
    waits = by_key(await job_latencies(taskq, [queue_name], KNOWN))
    assert {k: h.count for k, h in waits.items()} == {
        ("wait", "report.a"): 6, ("wait", "mail.b"): 4, ("wait", OTHER_TASK): 2,
    }  # fmt: skip

    acks = [Ack(i, tokens[i]) for i in ids["report.a"] + ids["stray.task"]]
    flags, _ = await taskq.complete(queue_name, acks, worker_id="w1")
    assert all(flags)
    error = JobError(type="E", message="no")
    for job_id in ids["mail.b"]:
        await taskq.fail(queue_name, job_id, tokens[job_id], error, retryable=False)

    hist = by_key(await job_latencies(taskq, [queue_name], KNOWN))
    assert {k: h.count for k, h in hist.items()} == {
        ("wait", "report.a"): 6, ("wait", "mail.b"): 4, ("wait", OTHER_TASK): 2,
        ("run", "report.a"): 6, ("run", "mail.b"): 4, ("run", OTHER_TASK): 2,
    }  # fmt: skip
    for h in hist.values():
        assert_prometheus_shape(h)
    # A stale ack (the job is no longer held) ends no execution: nothing more is counted.
    flags, _ = await taskq.complete(queue_name, [Ack(ids["report.a"][0], tokens[ids["report.a"][0]])])
    assert flags == [False]
    again = by_key(await job_latencies(taskq, [queue_name], KNOWN))
    assert again[("run", "report.a")].count == 6


async def test_a_replayed_claim_is_not_counted_again(taskq: Taskq, queue_name: str) -> None:
    for _ in range(3):
        await taskq.enqueue("report.a", {}, queue=queue_name)
    claim = taskq.commands[queue_name].claim("w1", 10, "0" * 19 + "7")
    first = await taskq.executor.run(claim)
    replayed = await taskq.executor.run(taskq.commands[queue_name].claim("w1", 10, "0" * 19 + "7"))
    assert len(first.jobs) == 3
    assert [j.id for j in replayed.jobs] == [j.id for j in first.jobs]
    hist = by_key(await job_latencies(taskq, [queue_name], KNOWN))
    assert hist[("wait", "report.a")].count == 3


async def test_a_delayed_job_waits_from_its_due_time(taskq: Taskq, queue_name: str) -> None:
    # Read before the call: the job is due 1.2 s after its created_at, taken inside the call, so a
    # clock read after a slow call (a loaded host) saw it claimable "early".
    enqueued = time.monotonic()
    await taskq.enqueue("report.a", {}, queue=queue_name, delay_ms=1200)
    deadline = enqueued + 10
    while not (await taskq.claim(queue_name, "w1", 1)).jobs:
        assert time.monotonic() < deadline, "the delayed job never became claimable"
        await asyncio.sleep(0.02)  # polling a claim: the job is due at a known time, nothing to wait on
    assert time.monotonic() - enqueued >= 1.2
    h = by_key(await job_latencies(taskq, [queue_name], KNOWN))[("wait", "report.a")]
    assert h.count == 1
    # Counted from enqueue it would be over 1.2 s; from its due time it is the polling slack.
    assert dict(h.cumulative())["1.0"] == 1, h.cumulative()
    assert h.sum < 1.0


async def test_time_fields_inside_args_do_not_fool_the_wait(taskq: Taskq, queue_name: str) -> None:
    # The scripts read created_at / run_at from the payload text: keys of the same names in args
    # (here saying 1970) must not be taken for the job's own.
    args = {"created_at": 1, "run_at": 1, "nested": {"created_at": 1}}
    await taskq.enqueue("report.a", args, queue=queue_name)
    assert len((await taskq.claim(queue_name, "w1", 1)).jobs) == 1
    h = by_key(await job_latencies(taskq, [queue_name], KNOWN))[("wait", "report.a")]
    assert h.count == 1
    assert h.sum < 60, f"a wait of {h.sum} s: the args' timestamps were read"
