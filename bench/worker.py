"""Worker throughput: taskq vs Dramatiq vs Celery, one worker process each, same Redis, same run.

    python -m bench.worker [--jobs 20000] [--sleep-jobs 5000] [--only taskq,dramatiq,celery]

Each system gets the same pre-filled queue of no-op jobs (then of 10 ms sleep jobs), then one worker
process is started and timed from its first finished job to its last: process start-up and imports
are left out, for all three alike. Completion is read from Redis without touching the jobs' path:
taskq's ``processed`` counter, Dramatiq's message hash (a message leaves it when acked), Celery's
queue list plus its unacked hash (``acks_late``, so a message is only gone once done). All three ack
after running the job (at-least-once), so the comparison is like for like.

Dramatiq and Celery are installed in their own virtualenvs under ``bench/.venv-*`` (git-ignored),
created here on first use with pip. Results go to stdout as a Markdown table; copy it to
``bench/results/worker.md`` with the command line and the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis

from bench.common import peer_python, stop, table_head, table_row
from taskq import EnqueueRequest, GlobalKeys, Taskq, connect
from taskq.localserver import LocalRedis
from worker.settings import WorkerSettings


@dataclass(frozen=True, slots=True)
class Result:
    system: str
    workload: str
    config: str
    jobs: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


def timed_drain(proc: subprocess.Popen[bytes], done: Callable[[], int], total: int, limit: float) -> float:
    """Seconds from the first finished job to the last, read by polling Redis every 5 ms."""
    deadline = time.monotonic() + limit
    first: float | None = None
    try:
        while True:
            finished = done()
            now = time.monotonic()
            if first is None and finished > 0:
                first = now
                first_count = finished
            if finished >= total:
                assert first is not None
                # The first poll saw first_count jobs already done: credit the time they took.
                return (now - first) * total / max(1, total - first_count)
            if now > deadline or proc.poll() is not None:
                raise RuntimeError(f"{finished}/{total} jobs done when the run ended")
            time.sleep(0.005)
    finally:
        stop(proc)


# ---------------------------------------------------------------- taskq


def run_taskq(url: str, task: str, args: dict[str, float], n: int, concurrency: int, prefetch: int) -> float:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    settings = WorkerSettings(_env_file=None, redis_url=url, taskq_prefix=prefix, debug_tasks=True)  # type: ignore[call-arg]

    async def fill() -> None:
        client = connect(settings)
        taskq = Taskq.from_settings(client, settings)
        for start in range(0, n, 1000):
            await taskq.enqueue_many([EnqueueRequest(task, args) for _ in range(min(1000, n - start))])
        await client.aclose()

    asyncio.run(fill())
    env = dict(
        os.environ, REDIS_URL=url, TASKQ_PREFIX=prefix, DEBUG_TASKS="true", LOG_LEVEL="WARNING",
        WORKER_CONCURRENCY=str(concurrency), WORKER_PREFETCH=str(prefetch),
    )  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "worker"], env=env)
    sync = redis.Redis.from_url(url)
    key = GlobalKeys(prefix).queue("default").stats

    def done() -> int:
        return int(sync.hget(key, "processed") or 0)

    try:
        return timed_drain(proc, done, n, 600)
    finally:
        sync.close()


# ---------------------------------------------------------------- dramatiq

DRAMATIQ_TASKS = """
import os, time
import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"], namespace=os.environ["BENCH_NS"])
dramatiq.set_broker(broker)

@dramatiq.actor(max_retries=0)
def noop():
    pass

@dramatiq.actor(max_retries=0)
def sleep10():
    time.sleep(0.01)

if __name__ == "__main__":
    import sys
    actor = noop if sys.argv[1] == "noop" else sleep10
    for _ in range(int(sys.argv[2])):
        actor.send()
"""


def run_dramatiq(url: str, workload: str, n: int, threads: int, workdir: Path) -> float:
    python = peer_python("dramatiq")
    (workdir / "dramatiq_tasks.py").write_text(DRAMATIQ_TASKS)
    ns = f"dq{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, BENCH_REDIS_URL=url, BENCH_NS=ns, PYTHONPATH=str(workdir))
    subprocess.run([str(python), str(workdir / "dramatiq_tasks.py"), workload, str(n)], env=env, check=True)
    cmd = [str(python), "-m", "dramatiq", "dramatiq_tasks", "--processes", "1", "--threads", str(threads)]
    proc = subprocess.Popen(cmd, env=env, cwd=workdir, stderr=subprocess.DEVNULL)
    sync = redis.Redis.from_url(url)

    def done() -> int:
        # Messages live in <ns>:default.msgs until acked; the queue list holds the ids not yet taken.
        return n - int(sync.hlen(f"{ns}:default.msgs"))

    try:
        return timed_drain(proc, done, n, 600)
    finally:
        sync.close()


# ---------------------------------------------------------------- celery

CELERY_TASKS = """
import os, time
from celery import Celery

app = Celery("celery_tasks", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    task_acks_late=True,
    worker_hijack_root_logger=False,
    task_default_queue=os.environ["BENCH_NS"],
    broker_connection_retry_on_startup=True,
)

@app.task
def noop():
    pass

@app.task
def sleep10():
    time.sleep(0.01)

if __name__ == "__main__":
    import sys
    task = noop if sys.argv[1] == "noop" else sleep10
    for _ in range(int(sys.argv[2])):
        task.delay()
"""


def run_celery(url: str, workload: str, n: int, concurrency: int | None, workdir: Path) -> float:
    python = peer_python("celery")
    (workdir / "celery_tasks.py").write_text(CELERY_TASKS)
    queue = f"cq{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, BENCH_REDIS_URL=url, BENCH_NS=queue, PYTHONPATH=str(workdir))
    subprocess.run([str(python), str(workdir / "celery_tasks.py"), workload, str(n)], env=env, check=True)
    cmd = [str(python), "-m", "celery", "-A", "celery_tasks", "worker", "-P", "threads", "-Q", queue]
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"]
    if concurrency:
        cmd += ["-c", str(concurrency)]
    proc = subprocess.Popen(cmd, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sync = redis.Redis.from_url(url)

    def done() -> int:
        return n - int(sync.llen(queue)) - int(sync.hlen("unacked"))

    try:
        return timed_drain(proc, done, n, 600)
    finally:
        sync.close()


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="no-op jobs per run")
    parser.add_argument("--sleep-jobs", type=int, default=5_000, help="10 ms sleep jobs per run")
    parser.add_argument("--only", default="taskq,dramatiq,celery")
    parser.add_argument("--tuned", type=int, default=200, help="taskq's tuned concurrency")
    ns = parser.parse_args()
    only = set(ns.only.split(","))
    results: list[Result] = []
    with LocalRedis().running() as server, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for workload, n in (("noop", ns.jobs), ("sleep 10 ms", ns.sleep_jobs)):
            task, args = ("debug.noop", {}) if workload == "noop" else ("debug.sleep", {"seconds": 0.01})
            peer = "noop" if workload == "noop" else "sleep10"
            url, tuned = server.url, ns.tuned
            runs: list[tuple[str, str, Callable[[], float]]] = []
            if "taskq" in only:
                runs.append(
                    ("taskq", "concurrency 10 (default)", partial(run_taskq, url, task, args, n, 10, 0))
                )
                runs.append(
                    (
                        "taskq",
                        f"concurrency {tuned}, prefetch {tuned // 2}",
                        partial(run_taskq, url, task, args, n, tuned, tuned // 2),
                    )
                )
            if "dramatiq" in only:
                for threads, label in ((8, "8 threads (default)"), (32, "32 threads")):
                    runs.append(("dramatiq", label, partial(run_dramatiq, url, peer, n, threads, workdir)))
            if "celery" in only:
                for conc, label in ((None, "threads pool, -c CPUs (default)"), (32, "threads pool, -c 32")):
                    runs.append(("celery", label, partial(run_celery, url, peer, n, conc, workdir)))
            for system, config, run in runs:
                seconds = run()
                results.append(Result(system, workload, config, n, seconds))
                print(f"{system:9} {workload:12} {config:36} {n / seconds:10.0f} jobs/s", flush=True)
    print()
    print("\n".join(table_head("system", "workload", "configuration", "jobs", "jobs/s", numeric=2)))
    for r in results:
        print(table_row(r.system, r.workload, r.config, r.jobs, f"{r.rate:,.0f}"))


if __name__ == "__main__":
    main()
