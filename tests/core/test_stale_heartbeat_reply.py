"""A heartbeat reply names the lease it is about by job id *and* token: after a job was reaped and
claimed again (by the same worker, even), "lost" for the old token must not read as "lost" for the
new run of the same job."""

from __future__ import annotations

from redis.asyncio import Redis

from taskq import ScriptCode, Taskq


async def test_a_heartbeat_reply_tells_the_old_and_the_new_lease_of_one_job_apart(
    taskq: Taskq, redis: Redis, queue_name: str
) -> None:
    job_id = (await taskq.enqueue("debug.noop", queue=queue_name)).id
    old = (await taskq.claim(queue_name, "w1", 1)).jobs[0]
    await redis.zadd(taskq.queue_keys(queue_name).active, {job_id: 1})  # its lease ran out long ago
    assert (await taskq.reap(queue_name)).requeued == 1
    new = (await taskq.claim(queue_name, "w1", 1)).jobs[0]
    assert new.id == old.id == job_id
    assert new.token != old.token

    # What the lease keeper sends when its snapshot still had the old lease and the new one arrived.
    codes = await taskq.heartbeat({queue_name: [(job_id, old.token), (job_id, new.token)]})
    assert codes == {(job_id, old.token): ScriptCode.STALE_TOKEN, (job_id, new.token): ScriptCode.OK}
