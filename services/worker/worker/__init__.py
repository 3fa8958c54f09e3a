"""taskq worker: runs jobs from Redis reliably, concurrently, and stops gracefully.

Entry points: ``python -m worker`` (run), ``python -m worker check`` (healthcheck), ``python -m worker
burst`` (drain the queues, then exit). Modules, from the outside in:

- ``settings``: ``WorkerSettings`` (env) and the queue order; ``__main__``: wiring and the healthcheck.
- ``manager``: ``Worker``, the manager of job runners: jobs in hand, their outcomes, graceful stop.
- ``slots``: the jobs held and the slots free; ``claims``: the claim loop; ``acks``: the ack flusher.
- ``lease``: the lease thread (renewals, registry, reaper, promoter); ``connection``: outage handling.
- ``job_runner``, ``decode``, ``execution``, ``deadlines``: one job from claim to outcome.
- ``handlers``: the task handlers and how each runs (event loop, thread, child process).
- ``cron``: scheduled jobs; ``logs``: JSON lines; ``testing``: helpers for suites that drive a worker.

Nothing is imported here, so ``python -m worker check`` stays cheap.
"""
