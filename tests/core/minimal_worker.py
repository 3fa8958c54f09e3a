"""A minimal claim-run-ack worker built on the core alone, run as a real process by the core's
crash and lease tests (the full worker service has its own suite).

Every execution is appended to a ledger file before the ack, so a test can count runs even when
this process is SIGKILLed between the run and the ack.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from redis.asyncio import Redis

from taskq import Ack, QueueConfig, Taskq, Waiter, Wire


async def main(args: argparse.Namespace) -> None:
    config = QueueConfig(prefix=args.prefix, lease_ms=args.lease_ms, backoff_base_ms=0)
    redis = Redis.from_url(args.url, socket_timeout=5)
    taskq = Taskq(redis, config)
    waiter = Waiter(taskq, Wire(args.url))
    worker_id = f"{socket.gethostname()}-{os.getpid()}"
    held: dict[str, int] = {}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    ledger = open(args.ledger, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)

    async def heartbeat() -> None:
        while not stop.is_set():
            await taskq.heartbeat({args.queue: list(held.items())})
            await taskq.reap(args.queue, lock_seconds=args.reap_ms / 1000, owner=worker_id)
            await asyncio.sleep(args.heartbeat_ms / 1000)

    async def run(job_id: str, token: int, seconds: float) -> Ack:
        await asyncio.sleep(seconds)
        ledger.write(f"{job_id}\n")
        return Ack(job_id, token)

    beat = asyncio.create_task(heartbeat())
    print("ready", flush=True)
    while not stop.is_set():
        batch = await taskq.claim(args.queue, worker_id, args.concurrency)
        if not batch.jobs:  # idle: block until an enqueue, and wake with the job
            batch = await waiter.wait_and_claim(args.queue, worker_id, args.concurrency, timeout=0.5)
            if not batch.jobs:
                continue
        for job in batch.jobs:
            held[job.id] = job.token
        acks = await asyncio.gather(
            *(run(j.id, j.token, float(j.payload().args.get("seconds", 0))) for j in batch.jobs)
        )
        await taskq.complete(args.queue, acks)
        for ack in acks:
            held.pop(ack.id, None)
    beat.cancel()
    await redis.aclose()
    await waiter.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lease-ms", type=int, default=5000)
    parser.add_argument("--heartbeat-ms", type=int, default=1000)
    parser.add_argument("--reap-ms", type=int, default=250)
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
