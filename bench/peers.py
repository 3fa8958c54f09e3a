"""The peers' side of ``bench.client``: scripts run by each peer's own interpreter (``bench/.venv-*``),
so they are text here, not modules (taskq's environment does not have the peers installed).

Each measures exactly what ours does in ``bench.client`` and prints one JSON line."""

from __future__ import annotations

#: Dramatiq's ``send()``, one message per call: argv url, calls. The same three fields as ours.
DRAMATIQ_SEND = """
import json, statistics, sys, time
import dramatiq
from dramatiq.brokers.redis import RedisBroker
dramatiq.set_broker(RedisBroker(url=sys.argv[1]))

@dramatiq.actor(queue_name="peer")
def send_email(recipient_email, subject, body):
    pass

email = {"recipient_email": "someone@example.com", "subject": "Your report is ready", "body": "Hello! " * 20}
send_email.send(**email)
calls, clock = [], time.perf_counter
for _ in range(int(sys.argv[2])):
    t = clock()
    send_email.send(**email)
    calls.append(clock() - t)
print(json.dumps({"jobs_per_s": len(calls) / sum(calls), "median_us": statistics.median(calls) * 1e6}))
"""

#: The module the taskiq worker loads (``taskiq worker taskiq_bench:broker``): its stamp task is
#: ``bench.tasks.stamp``'s twin (the stamp first, then the push).
TASKIQ_BROKER = """
import os, time
from redis.asyncio import Redis
from taskiq_redis import RedisStreamBroker

URL = os.environ["BENCH_REDIS_URL"]
STAMPS = "bench:taskiq-stamps"
broker = RedisStreamBroker(URL)
_redis = None

@broker.task(task_name="stamp")
async def stamp(t0: int) -> None:
    started = time.perf_counter_ns()
    global _redis
    if _redis is None:
        _redis = Redis.from_url(URL)
    await _redis.lpush(STAMPS, f"{t0} {started}")
"""

#: The enqueuing side, timed by ``bench.stamp_loop`` as ours is, one job per line read (argv: the
#: idle gap, s). The worker's consumer group reads new messages only ('$'), so until it exists a
#: message goes unseen: the first stamp is sent until one comes back.
TASKIQ_LATENCY = """
import asyncio, sys, time
from taskiq_bench import STAMPS, URL, broker, stamp
from bench.stamp_loop import serve_stamps
from redis.asyncio import Redis

async def main():
    await broker.startup()
    stamps = Redis.from_url(URL, socket_timeout=90)
    deadline = time.monotonic() + 60
    while await stamp.kiq(0) and not await stamps.blpop([STAMPS], timeout=1):
        if time.monotonic() > deadline:
            raise SystemExit("the taskiq worker ran no job in 60 s")
    await serve_stamps(stamp.kiq, stamps, STAMPS, float(sys.argv[1]))
    await stamps.aclose()
    await broker.shutdown()

asyncio.run(main())
"""
