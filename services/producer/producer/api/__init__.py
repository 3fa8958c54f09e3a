"""One router per resource; ``ROUTERS`` is the order they are mounted (and listed in /docs)."""

from fastapi import APIRouter

from producer.api import artifacts, dead_letter, email, events, health, jobs, queues, tasks, workers

ROUTERS: tuple[APIRouter, ...] = (
    email.router,
    jobs.router,
    events.router,
    artifacts.router,
    queues.router,
    workers.router,
    dead_letter.router,
    tasks.router,
    health.router,
)

__all__ = ["ROUTERS"]
