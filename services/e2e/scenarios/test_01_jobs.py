"""Scenarios 1-3: an email end to end, a burst of jobs, and the speed-up from scaling workers."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from e2e.harness import Api, Fleet, Sink, unique, wait_for

SLEEP = 3.0  # seconds each debug.sleep job of scenarios 2 and 3 takes


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


#: A recipient ``name+delay<ms>@...`` makes the e2e SMTP sink (e2e.smtp_sink) take that long to accept:
#: long enough that a job read back right after its 202 cannot have run yet.
SMTP_DELAY_MS = 2000
#: A job is still waiting or running while it is in one of these (the API's job statuses).
NOT_RUN = {"queued", "running"}


def test_1_single_email_is_accepted_at_once_and_delivered(api: Api, sink: Sink) -> None:
    subject, body = "Your report is ready", "Hello,\nthe numbers are in.\n"
    # The accepting, not its speed (bench/producer.py measures POST /send-email's latency): the 202
    # comes before the email is sent, so a slow SMTP server never holds the caller.
    recipients = [f"{unique('s1')}+delay{SMTP_DELAY_MS}@example.com" for _ in range(5)]
    ids = []
    for to in recipients:
        response = api.request(
            "POST", "/send-email", json={"recipient_email": to, "subject": subject, "body": body}
        )
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "queued"
        assert accepted["message"] == "Email task added to queue"
        status = api.job(accepted["job_id"])["status"]
        assert status in NOT_RUN, f"the 202 for {to} came after the email was sent (job {status})"
        ids.append(accepted["job_id"])

    jobs = api.wait_finished(ids, timeout=30)
    assert all(job["status"] == "succeeded" and job["task"] == "send_email" for job in jobs.values()), jobs

    for recipient in recipients:
        (mail,) = wait_for(partial(sink.to, recipient), timeout=10, what=f"the email to {recipient}")
        assert mail.rcpt_tos == [recipient]
        assert mail.subject == subject
        assert mail.body.rstrip("\n") == body.rstrip("\n")


def test_2_ten_three_second_jobs_are_accepted_instantly_and_all_complete(api: Api) -> None:
    # Instantly: each answer comes while its job has still to run (not a time limit: bench/producer.py
    # measures POST /jobs's latency).
    ids: list[str] = []
    for i in range(10):
        job_id = api.submit("debug.sleep", {"seconds": SLEEP, "tag": f"s2-{i}"})
        status = api.job(job_id)["status"]
        assert status in NOT_RUN, f"POST /jobs answered after job {i} ran (job {status})"
        ids.append(job_id)

    jobs = api.wait_finished(ids, timeout=10 * SLEEP + 30)
    assert [j["status"] for j in jobs.values()] == ["succeeded"] * 10, jobs
    assert {j["result"] for j in jobs.values()} == {f"s2-{i}" for i in range(10)}


def _run_batch(api: Api, count: int) -> tuple[float, list[dict[str, object]]]:
    """Enqueue ``count`` sleeps at once; the makespan from the first enqueue to the last finish, as the
    server recorded them (so polling delays on our side do not count)."""
    ids = [api.submit("debug.sleep", {"seconds": SLEEP}) for _ in range(count)]
    jobs = list(api.wait_finished(ids, timeout=count * SLEEP + 30).values())
    assert all(j["status"] == "succeeded" for j in jobs), jobs
    first = min(_seconds(str(j["created_at"])) for j in jobs)
    last = max(_seconds(str(j["finished_at"])) for j in jobs)
    return last - first, jobs


def test_3_three_workers_finish_the_same_jobs_about_three_times_faster(
    api: Api, fleet: Fleet, measured: list[str]
) -> None:
    # 9 jobs, not the 10: with concurrency 1, 10 jobs on 3 workers take ceil(10/3) = 4 rounds
    # against 10 on one worker, an ideal ratio of exactly 2.5 that no real run can reach. With 9 the
    # ideal is 3.0 and the >= 2.5 bound leaves room for real overheads.
    count = 9
    fleet.set_workers(1)
    one, _ = _run_batch(api, count)

    replicas = fleet.set_workers(3)
    three, jobs = _run_batch(api, count)

    ratio = one / three
    measured.append(
        f"scenario 3: {count} jobs of {SLEEP:.0f} s: 1 worker {one:.1f} s, 3 workers {three:.1f} s, "
        f"speed-up {ratio:.2f}x"
    )
    assert ratio >= 2.5, f"1 worker {one:.1f} s vs 3 workers {three:.1f} s: speed-up {ratio:.2f} < 2.5"

    ran_on = [fleet.container_of(str(j["worker"])).id for j in jobs]
    per_container = {c.id: ran_on.count(c.id) for c in replicas}
    assert all(n >= 1 for n in per_container.values()), f"jobs not spread over 3 workers: {per_container}"


def test_1b_a_report_written_by_a_worker_is_served_by_the_producer(api: Api, fleet: Fleet) -> None:
    """The reports volume: a worker (UID 10001, read-only root) writes the CSV into it, and the
    producer serves that file through its own read-only mount at GET /jobs/{id}/artifact."""
    job_id = api.submit("generate_report", {"title": "e2e", "rows": 10})
    job = api.wait_finished([job_id], timeout=60)[job_id]
    assert job["status"] == "succeeded", job
    name = str(job["result"]["artifact"])

    response = api.request("GET", f"/jobs/{job_id}/artifact")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    read = "import sys; sys.stdout.write(open('/reports/' + sys.argv[1], newline='').read())"
    code, on_disk = fleet.one("producer").exec_run(["python3", "-c", read, name])
    assert code == 0, on_disk
    assert isinstance(on_disk, bytes)
    assert response.content == on_disk
    assert response.text.splitlines()[0], "the report is empty"
