"""Scenarios 4-7: a worker stopped and started, a worker SIGKILLed mid-job, Redis restarted under
load, and workers scaled down under load. In each, every accepted job completes.

The email jobs here are the ledger: the SMTP sink records every delivery, so "exactly once" is
counted at the receiving end, not taken from the system under test. A recipient with ``+delay<ms>``
makes the sink hold the reply, which gives each email job a known duration.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from e2e.harness import Api, Fleet, Sink, unique, wait_for


def _send_slow_emails(api: Api, count: int, delay_ms: int, tag: str) -> dict[str, str]:
    """Enqueue ``count`` emails the sink takes ``delay_ms`` to accept; job id -> subject."""
    jobs: dict[str, str] = {}
    for i in range(count):
        subject = f"{tag} #{i}"
        response = api.request(
            "POST",
            "/send-email",
            json={"recipient_email": f"{tag}+delay{delay_ms}@example.com", "subject": subject, "body": "x"},
        )
        assert response.status_code == 202, response.text
        jobs[response.json()["job_id"]] = subject
    return jobs


def _delivered(sink: Sink, tag: str) -> Counter[str]:
    return Counter(m.subject for m in sink.messages() if m.subject.startswith(f"{tag} #"))


def _wait_deliveries(sink: Sink, tag: str, count: int) -> Counter[str]:
    def enough() -> Counter[str] | None:
        delivered = _delivered(sink, tag)
        return delivered if sum(delivered.values()) >= count else None

    return wait_for(enough, timeout=10, what=f"{count} deliveries")


def _count(api: Api, ids: list[str], status: str) -> int:
    return sum(api.job(i)["status"] == status for i in ids)


def test_4_stopped_worker_leaves_jobs_queued_and_they_complete_once_after_restart(
    api: Api, fleet: Fleet, sink: Sink, measured: list[str]
) -> None:
    (worker,) = fleet.set_workers(1)
    tag = unique("s4")
    jobs = _send_slow_emails(api, 5, delay_ms=1500, tag=tag)
    ids = list(jobs)

    wait_for(lambda: _count(api, ids, "succeeded") >= 2, timeout=30, what="2 of 5 emails sent")
    worker.stop(timeout=15)  # SIGTERM: the job in hand finishes within WORKER_SHUTDOWN_GRACE
    assert fleet.state(worker)["ExitCode"] == 0, "graceful stop must exit 0, not 137"

    statuses = Counter(api.job(i)["status"] for i in ids)
    assert statuses["running"] == 0, statuses
    assert statuses["queued"] >= 1, f"nothing left to keep queued: {statuses}"
    # With no worker running nothing may move: observe for a moment that the queue holds them.
    queued_before = statuses["queued"]
    observe_until = time.monotonic() + 2
    while time.monotonic() < observe_until:
        assert api.queue()["pending"] == queued_before
        time.sleep(0.2)

    worker.start()
    done = api.wait_finished(ids, timeout=60)
    measured.append(f"scenario 4: stopped with {queued_before} of 5 queued; all 5 done after restart")
    assert all(j["status"] == "succeeded" for j in done.values()), done
    delivered = _wait_deliveries(sink, tag, 5)
    assert delivered == Counter(jobs.values()), f"each email exactly once, got {delivered}"


def test_5_killed_worker_job_is_reclaimed_after_its_lease_and_completes(
    api: Api, fleet: Fleet, measured: list[str]
) -> None:
    fleet.set_workers(2)
    victim = api.submit("debug.sleep", {"seconds": 4, "tag": "victim"})
    others = [api.submit("debug.sleep", {"seconds": 0.5, "tag": f"s5-{i}"}) for i in range(4)]

    running = wait_for(
        lambda: (j := api.job(victim))["status"] == "running" and j["worker"] and j,
        timeout=30,
        what="the long job to start",
    )
    container = fleet.container_of(str(running["worker"]))
    container.kill()  # SIGKILL: no chance to hand the job back
    killed_at = time.time()

    done = api.wait_finished([victim, *others], timeout=60)
    job = done[victim]
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2, f"the job should have run again exactly once: {job}"
    assert not str(job["worker"]).startswith(container.short_id), "a different worker must finish it"
    reclaimed_after = datetime.fromisoformat(job["started_at"]).timestamp() - killed_at
    measured.append(f"scenario 5: the killed worker's job restarted elsewhere {reclaimed_after:.1f} s later")
    assert reclaimed_after < 3 + 5, "reclaimed later than lease (3 s) + maintenance slack"
    assert all(done[i]["status"] == "succeeded" for i in others), done


def test_6_redis_restart_loses_nothing_api_answers_503_meanwhile_and_workers_resume(
    api: Api, fleet: Fleet, measured: list[str]
) -> None:
    workers = fleet.set_workers(3)
    restarts = {c.id: fleet.state(c)["StartedAt"] for c in workers}
    ids = [api.submit("debug.sleep", {"seconds": 0.5, "tag": f"s6-{i}"}) for i in range(30)]

    redis = fleet.one("redis")
    redis.stop(timeout=10)  # the first half of `docker restart`, held open: SIGTERM, AOF flushed
    try:
        answers: list[tuple[int, float]] = []
        outage_until = time.monotonic() + 3
        while time.monotonic() < outage_until:
            started = time.perf_counter()
            response = api.request("POST", "/jobs", json={"task": "debug.noop", "args": {}}, timeout=5)
            answers.append((response.status_code, time.perf_counter() - started))
            assert response.headers["content-type"].startswith("application/problem+json"), response.text
        codes = Counter(code for code, _ in answers)
        slowest = max(t for _, t in answers)
        measured.append(f"scenario 6: during the outage {dict(codes)}, slowest answer {slowest:.2f} s")
        assert set(codes) == {503}, f"the API must answer 503 while Redis is down: {codes}"
        assert slowest < 2.5, f"a 503 took {slowest:.2f} s: the API must fail fast, not hang"
    finally:
        redis.start()
    fleet.wait_healthy([redis])

    done = api.wait_finished(ids, timeout=90)
    assert all(j["status"] == "succeeded" for j in done.values()), Counter(j["status"] for j in done.values())
    # The workers came back by themselves: same containers, never restarted, fresh heartbeats.
    fleet.wait_healthy(workers, timeout=30)
    assert {c.id: fleet.state(c)["StartedAt"] for c in workers} == restarts
    after = api.submit("debug.noop", {"tag": "after"})
    assert api.wait_finished([after], timeout=30)[after]["status"] == "succeeded"


def _burst(api: Api, count: int = 160, clients: int = 16) -> Counter[int]:
    """Status codes of concurrent GET /queues: enough at once that the producer holds many pooled
    Redis connections (one per request in flight)."""
    with ThreadPoolExecutor(clients) as pool:
        return Counter(pool.map(lambda _: api.request("GET", "/queues").status_code, range(count)))


def test_6b_after_docker_restart_of_redis_every_request_succeeds_again(api: Api, fleet: Fleet) -> None:
    """Recovered means every request, not just the first: the producer must not hand out pooled
    connections that died with the old Redis process."""
    assert _burst(api) == Counter({200: 160})  # the pool now holds connections to this Redis process
    fleet.one("redis").restart(timeout=10)
    fleet.wait_healthy([fleet.one("redis")])
    wait_for(lambda: api.request("GET", "/readyz").status_code == 200, timeout=30, what="producer ready")
    after = _burst(api)
    assert after == Counter({200: 160}), f"errors after Redis was back and /readyz said ready: {after}"


def test_7_scale_down_three_to_one_under_load_loses_and_duplicates_nothing(
    api: Api, fleet: Fleet, sink: Sink, measured: list[str]
) -> None:
    workers = fleet.set_workers(3)
    tag = unique("s7")
    jobs = _send_slow_emails(api, 24, delay_ms=800, tag=tag)
    ids = list(jobs)

    wait_for(lambda: _count(api, ids, "succeeded") >= 6, timeout=30, what="a quarter of the emails sent")
    fleet.stop_all(workers[1:], timeout=15)  # what `compose up --scale worker=1` does to the other two
    exit_codes = [fleet.state(c)["ExitCode"] for c in workers[1:]]
    assert exit_codes == [0, 0], f"graceful stop must exit 0, not 137: {exit_codes}"

    done = api.wait_finished(ids, timeout=90)
    assert all(j["status"] == "succeeded" for j in done.values()), Counter(j["status"] for j in done.values())
    assert all(j["attempts"] == 1 for j in done.values()), [j for j in done.values() if j["attempts"] != 1]
    delivered = _wait_deliveries(sink, tag, 24)
    measured.append(f"scenario 7: 24 emails across a 3 -> 1 scale-down: {sum(delivered.values())} deliveries")
    assert delivered == Counter(jobs.values()), "each email delivered exactly once"


@pytest.fixture(autouse=True)
def _clear_mailbox(sink: Sink) -> None:
    sink.clear()
