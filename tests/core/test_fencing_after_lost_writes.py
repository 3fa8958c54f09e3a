"""Redis lost its last writes (AOF ``everysec`` and a host crash lose up to a second, the fencing-token
counter with them): the job is claimed again, and the new holder's token must differ from the lost
holder's, so the old holder's heartbeat and late ack are refused and the new holder's ack is taken."""

from __future__ import annotations

from redis.asyncio import Redis

from taskq import Ack, JobStatus, ScriptCode, Taskq


async def test_a_claim_after_redis_lost_the_previous_claim_gets_a_token_never_seen_before(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    enq = await taskq.enqueue("debug.noop", queue=queue_name, max_attempts=3)
    qk = taskq.queue_keys(queue_name)
    touched = [qk.job(enq.id), qk.pending, qk.scheduled, qk.active, qk.marker, qk.token, qk.stats]
    # What the disk kept: the state before the claim (the claim fell in the unsynced second).
    kept = {key: await redis.dump(key) for key in touched}
    old = (await taskq.claim(queue_name, "w-old", 1)).jobs[0]

    # The host crashed and Redis came back from that state; the old holder never heard of it.
    for key, value in kept.items():
        await redis.delete(key)
        if value is not None:
            await redis.restore(key, 0, value)
    new = (await taskq.claim(queue_name, "w-new", 1)).jobs[0]

    assert new.id == old.id
    assert new.token != old.token, "the fencing token repeated after lost writes"
    assert await taskq.heartbeat({queue_name: [(old.id, old.token)]}) == {
        (old.id, old.token): ScriptCode.STALE_TOKEN
    }
    assert (await taskq.complete(queue_name, [Ack(old.id, old.token, '"old"')]))[0] == [False]
    assert (await taskq.complete(queue_name, [Ack(new.id, new.token, '"new"')]))[0] == [True]
    job = await taskq.get_job(enq.id)
    assert job is not None
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, "new")
