"""GET /jobs/{id} and the unauthenticated /metrics cost a fixed number of Redis calls, set by the
declared queues, however many names the queue registry holds (names clients sent before QUEUES
existed, or written by anyone with Redis access). Counted with Redis's own INFO commandstats."""

from __future__ import annotations

from typing import Any

from taskq import Taskq

JUNK = [f"junk-{i}" for i in range(2000)]


#: Not the scrape's: each producer process flushes its request-latency counts once a second (HINCRBY
#: in a pipeline, producer/http_metrics.py), whenever that falls inside a measured window, on a
#: connection of its own opened by its first flush (a new connection's handshake: HELLO, CLIENT ...).
BACKGROUND = {"cmdstat_hincrby", "cmdstat_hello", "cmdstat_client|setinfo", "cmdstat_client|setname"}


async def _calls(taskq: Taskq, command: str | None = None) -> int:
    """Commands Redis has run so far: all of them (but the background flush), or one kind (scripts'
    own calls included)."""
    stats: dict[str, Any] = await taskq.redis.info("commandstats")
    if command is not None:
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
    return sum(int(v["calls"]) for k, v in stats.items() if k not in BACKGROUND)


async def test_job_lookup_reads_only_the_declared_queues(make_client: Any, taskq: Taskq) -> None:
    await taskq.register_queues(JUNK)
    async with make_client(queues="emails") as client:
        job_id = (await client.post("/jobs", json={"task": "debug.noop", "queue": "emails"})).json()["id"]
        before = await _calls(taskq, "hgetall")
        response = await client.get(f"/jobs/{job_id}")
        after = await _calls(taskq, "hgetall")
    assert response.status_code == 200
    assert response.json()["queue"] == "emails"
    # One HGETALL per declared queue (default, emails), not one per name in the registry.
    assert after - before <= 2


async def test_metrics_scrape_cost_does_not_grow_with_registered_names(
    make_client: Any, taskq: Taskq
) -> None:
    async with make_client(queues="emails") as client:
        await client.post("/jobs", json={"task": "debug.noop", "queue": "emails"})
        await client.get("/metrics")  # scripts loaded, connections open: measure the steady state

        async def scrape_cost() -> tuple[int, str]:
            before = await _calls(taskq)
            text = (await client.get("/metrics")).text
            return await _calls(taskq) - before, text

        clean, _ = await scrape_cost()
        await taskq.register_queues(JUNK)
        with_junk, text = await scrape_cost()
    assert with_junk <= clean + 2, (clean, with_junk)
    assert 'queue="emails"' in text
    assert "junk-" not in text
    # The leftovers are still visible as a number: the registry holds more than the declared queues.
    assert "taskq_queues_known 2001.0" in text
