"""Behaviours seen from inside one worker running in this process, against the real Redis."""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from taskq import DeadReason, JobPayload, JobStatus, Taskq
from worker.settings import WorkerSettings
from worker.slots import StopReason
from worker.testing import TERMINAL, RunningWorker, running_in_hand, wait_for, wait_status

Start = Callable[..., Awaitable[RunningWorker]]


def _ppids() -> dict[int, int]:
    """pid -> parent pid for every process on the box (/proc/<pid>/stat, field 4)."""
    out: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        out[int(stat.parent.name)] = int(fields[1])
    return out


def forked_children() -> set[int]:
    """The processes the in-process worker forked for its handlers: children of this process's
    forkserver (the forkserver itself is a child of this process)."""
    ppids = _ppids()
    ours = {pid for pid, parent in ppids.items() if parent == os.getpid() and _is_forkserver(pid)}
    return {pid for pid, parent in ppids.items() if parent in ours}


def _is_forkserver(pid: int) -> bool:
    try:
        return b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie (reaped later by its parent) runs nothing."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


WorkerWith = Callable[..., Awaitable[Taskq]]
Client = Callable[[WorkerSettings], Taskq]


async def test_jobs_overlap_up_to_the_concurrency(worker_with: WorkerWith) -> None:
    taskq = await worker_with(worker_concurrency=10)
    ids = [(await taskq.enqueue("debug.sleep", {"seconds": 1})).id for _ in range(10)]
    jobs = [await wait_status(taskq, job_id, TERMINAL, timeout=30) for job_id in ids]
    assert all(job.status is JobStatus.SUCCEEDED for job in jobs)
    # Overlap by the order of events, not by wall time: every job started before any job finished,
    # so all ten were running at once (serially, the second would start after the first ended).
    started = [job.started_at for job in jobs if job.started_at is not None]
    finished = [job.finished_at for job in jobs if job.finished_at is not None]
    assert len(started) == len(finished) == 10
    assert max(started) < min(finished)


async def test_async_job_past_its_timeout_is_cancelled_and_recorded(worker_with: WorkerWith) -> None:
    taskq = await worker_with()
    started = time.monotonic()
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 30}, timeout=0.3, max_attempts=1)).id
    job = await wait_status(taskq, job_id, TERMINAL, timeout=20)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.reason == DeadReason.TIMEOUT.value
    assert job.error.type == "JobTimeout"
    # Includes the worker's start on a loaded box; not stopped at its timeout would take the full 30 s.
    assert time.monotonic() - started < 15


async def test_cpu_spinning_job_past_its_timeout_is_killed_and_the_worker_lives_on(
    worker_with: WorkerWith,
) -> None:
    taskq = await worker_with()
    # The child lives only until its timeout: that is the whole window for the poll below to see it.
    spin = (await taskq.enqueue("debug.spin", {"seconds": 60}, timeout=3, max_attempts=1)).id
    await wait_status(taskq, spin, {JobStatus.RUNNING, *TERMINAL}, timeout=15)
    children: set[int] = set()

    async def child_spinning() -> bool:
        children.update(forked_children())
        return bool(children) or (await taskq.get_job(spin)) is None

    await wait_for(child_spinning, 15, "the handler's child process")
    job = await wait_status(taskq, spin, TERMINAL, timeout=30)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.reason == DeadReason.TIMEOUT.value
    # Killed, not left spinning: the failure is recorded only after the child is gone.
    assert children, "no child process was seen running the handler"
    assert not [pid for pid in children if alive(pid)], f"the timed-out child still runs: {children}"
    after = (await taskq.enqueue("debug.noop", {"tag": "still alive"})).id
    assert (await wait_status(taskq, after, TERMINAL)).result == "still alive"


async def test_spin_longer_than_several_leases_keeps_its_lease(worker_with: WorkerWith) -> None:
    # Three leases of spinning on one of two cores; five renewals per lease leave room for a busy box.
    taskq = await worker_with(lease_seconds=1.5, heartbeat_seconds=0.3, worker_maintenance_seconds=0.3)
    job_id = (await taskq.enqueue("debug.spin", {"seconds": 4.5}, max_attempts=1)).id
    job = await wait_status(taskq, job_id, TERMINAL, timeout=20)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.attempts == 1
    stats = await taskq.stats("default")
    assert stats.counters.get("lost", 0) == 0
    assert stats.counters.get("stale_acks", 0) == 0


async def test_a_blocked_event_loop_does_not_lose_leases(
    make_settings: Callable[..., WorkerSettings], client_for: Client, start_worker: Start
) -> None:
    """The worker shares this test's event loop: ``time.sleep`` here blocks it for five lease lengths.
    The lease thread renews anyway, so the reaper (run by the same worker's thread) takes nothing."""
    settings = make_settings(lease_seconds=0.5, heartbeat_seconds=0.1, worker_maintenance_seconds=0.1)
    taskq = client_for(settings)
    handle = await start_worker(settings)
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 1.0}, max_attempts=1)).id
    # In hand, not merely RUNNING in Redis: a lease the worker has not taken in hand is not renewed,
    # so blocking the loop before then would let the reaper take the job.
    await running_in_hand(handle.worker, job_id)
    time.sleep(2.5)
    job = await wait_status(taskq, job_id, TERMINAL, timeout=10)
    assert job.status is JobStatus.SUCCEEDED
    assert job.attempts == 1
    assert (await taskq.stats("default")).counters.get("lost", 0) == 0


async def test_progress_is_visible_and_cancellation_stops_a_running_job(worker_with: WorkerWith) -> None:
    taskq = await worker_with()
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 30})).id

    async def has_progress() -> bool:
        job = await taskq.get_job(job_id)
        return job is not None and job.progress is not None

    await wait_for(has_progress, 10, "progress")
    job = await taskq.get_job(job_id)
    assert job is not None
    assert job.progress is not None
    assert job.progress.message == "sleeping"
    started = time.monotonic()
    assert await taskq.cancel(job_id) is JobStatus.RUNNING  # only flagged: the worker must act
    job = await wait_status(taskq, job_id, TERMINAL, timeout=20)
    assert job.status is JobStatus.CANCELLED
    assert time.monotonic() - started < 15  # stopped at a heartbeat, not after 30 s


async def test_errors_retry_with_backoff_then_dead_letter_without_a_traceback(
    worker_with: WorkerWith,
) -> None:
    taskq = await worker_with()
    retried = (await taskq.enqueue("debug.fail", {"message": "boom"}, max_attempts=3)).id
    permanent = (await taskq.enqueue("debug.fail", {"message": "nope", "retryable": False})).id
    job = await wait_status(taskq, retried, {JobStatus.FAILED}, timeout=15)
    assert job.attempts == 3
    assert job.error is not None
    assert (job.error.type, job.error.message, job.error.reason) == ("DebugFailure", "boom", "error")
    job = await wait_status(taskq, permanent, {JobStatus.FAILED}, timeout=10)
    assert job.attempts == 1
    assert job.error is not None
    assert job.error.reason == DeadReason.NON_RETRYABLE.value
    assert "Traceback" not in job.error.message


async def test_bad_messages_are_dead_lettered_unrun_and_the_worker_lives_on(
    make_settings: Callable[..., WorkerSettings], client_for: Client, start_worker: Start, queue_name: str
) -> None:
    settings = make_settings(worker_queues=queue_name, max_payload_bytes=1024)
    taskq = client_for(settings)
    qk = taskq.queue_keys(queue_name)

    async def planted(payload: bytes) -> str:
        job_id = (await taskq.enqueue("debug.noop", {}, queue=queue_name)).id
        await taskq.redis.hset(qk.job(job_id), "payload", payload)
        return job_id

    def valid(**changes: object) -> dict[str, object]:
        doc: dict[str, object] = json.loads(
            JobPayload("x", "debug.noop", {}, queue_name, 5, 3, 10.0, 0).to_json()
        )
        doc.update(changes)
        return doc

    cases = {
        await planted(pickle.dumps({"task": "debug.noop"})): DeadReason.BAD_MESSAGE,
        await planted(json.dumps({"hello": "world"}).encode()): DeadReason.BAD_MESSAGE,
        await planted(
            json.dumps(valid(task="os.system", args={"cmd": "id"})).encode()
        ): DeadReason.UNKNOWN_TASK,
        await planted(json.dumps(valid(task="debug.sleep", args={"seconds": -1})).encode()): (
            DeadReason.INVALID_ARGS
        ),
        await planted(json.dumps(valid(args={"tag": "x" * 2000})).encode()): DeadReason.PAYLOAD_TOO_LARGE,
    }
    await start_worker(settings)
    for job_id, reason in cases.items():
        job = await wait_status(taskq, job_id, TERMINAL, timeout=10)
        assert job.status is JobStatus.FAILED
        assert job.attempts == 1
        assert job.error is not None
        assert job.error.reason == reason.value, (job_id, job.error)
    healthy = (await taskq.enqueue("debug.noop", {"tag": "fine"}, queue=queue_name)).id
    assert (await wait_status(taskq, healthy, TERMINAL)).result == "fine"


async def test_an_idle_worker_wakes_for_a_scheduled_job_without_polling(worker_with: WorkerWith) -> None:
    # The idle wait is 30 s: only the next-due bound can start the delayed job on time.
    taskq = await worker_with(worker_idle_wait_seconds=30, worker_maintenance_seconds=60)
    await taskq.enqueue("debug.noop", {})  # the worker is now blocked waiting for work
    job_id = (await taskq.enqueue("debug.noop", {"tag": "later"}, delay_ms=700)).id
    job = await wait_status(taskq, job_id, TERMINAL, timeout=20)
    assert job.started_at is not None
    assert (job.started_at - job.created_at).total_seconds() < 10  # not the 30 s idle wait


async def test_queue_weights_share_claims(
    make_settings: Callable[..., WorkerSettings], client_for: Client, start_worker: Start
) -> None:
    settings = make_settings(worker_queues="high:3,low:1", worker_concurrency=1)
    taskq = client_for(settings)
    for _ in range(100):
        await taskq.enqueue("debug.noop", {"tag": "low"}, queue="low")
        await taskq.enqueue("debug.noop", {"tag": "high"}, queue="high")
    await start_worker(settings)
    seen: list[tuple[int, int]] = []

    async def some_done() -> bool:
        high, low = await taskq.stats("high"), await taskq.stats("low")
        seen.append((high.processed_total, low.processed_total))
        return high.processed_total + low.processed_total >= 20

    await wait_for(some_done, 15, "20 jobs")
    high, low = seen[-1]
    # 3:1 while both queues have work (a snapshot taken while the worker keeps going).
    assert low > 0
    assert high > 2 * low


@pytest.mark.parametrize(
    ("overrides", "how"),
    [
        # Concurrency 1: no slot to claim it again, so the next renewal is what learns the lease is gone.
        ({"heartbeat_seconds": 0.2, "worker_concurrency": 1}, "renewal"),
        # Slots free and slow renewals: the worker claims the job again while the stale run is in hand.
        ({"heartbeat_seconds": 1.0, "lease_seconds": 5.0}, "reclaim"),
    ],
)
async def test_a_job_taken_away_is_stopped_here_and_run_again(
    overrides: dict[str, float],
    how: str,
    make_settings: Callable[..., WorkerSettings],
    client_for: Client,
    start_worker: Start,
) -> None:
    settings = make_settings(**overrides)
    taskq = client_for(settings)
    handle = await start_worker(settings)
    job_id = (await taskq.enqueue("debug.sleep", {"seconds": 30})).id
    first = await running_in_hand(handle.worker, job_id)
    # Take the job away (as the reaper does after a lease expiry): the token the worker holds is dead.
    assert await taskq.release("default", [(job_id, first.job.token)]) == 1

    async def replaced() -> bool:
        again = handle.worker.slots.held.get(job_id)
        stopped = first.task is not None and first.task.done()
        return stopped and again is not None and again is not first and again.task is not None

    await wait_for(replaced, 15, f"the stale run to be stopped ({how}) and the job run again")
    assert first.stop_reason is StopReason.LOST


async def _blocked_in_redis(taskq: Taskq, waiter_id: int | None) -> bool:
    if waiter_id is None:
        return False
    clients = await taskq.redis.client_list(client_id=[waiter_id])
    return bool(clients) and "b" in clients[0]["flags"]


async def test_an_idle_worker_wakes_with_the_job_and_stops_at_once_without_losing_one(
    make_settings: Callable[..., WorkerSettings], client_for: Client, start_worker: Start
) -> None:
    settings = make_settings(worker_idle_wait_seconds=30, worker_maintenance_seconds=60)
    taskq = client_for(settings)
    handle = await start_worker(settings)
    wire = handle.worker.waiter.wire

    async def blocked() -> bool:
        return await _blocked_in_redis(taskq, wire.client_id)

    await wait_for(blocked, 10, "the idle worker blocked in Redis")
    job_id = (await taskq.enqueue("debug.noop", {"tag": "woke"})).id
    assert (await wait_status(taskq, job_id, TERMINAL)).result == "woke"
    await wait_for(blocked, 10, "the worker idle again")
    # Stopping an idle worker ends its 30 s wait from outside instead of cancelling it (a claim
    # riding the wait would be stranded under a lease): the worker is gone in well under the wait.
    started = time.monotonic()
    assert await handle.stop(timeout=20) == 0
    assert time.monotonic() - started < 10
    stats = await taskq.stats(settings.queue_names()[0])
    assert (stats.running, stats.pending) == (0, 0)
