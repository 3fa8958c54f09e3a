"""``python -m producer``: serve the API with uvicorn. ``python -m producer check``: the container
healthcheck, exit 0 iff ``GET /readyz`` on this host answers 200 (Python only, no curl).

The task modules (``TASKQ_TASKS``) are imported before uvicorn binds the port: a module that does not
load is one error line and a non-zero exit, so the healthcheck never turns green. The app factory
then takes the same registry from the per-process cache (``TaskRegistry.load``)."""

from __future__ import annotations

import logging
import signal
import sys
import urllib.error
import urllib.request
from types import FrameType

from producer import logs
from producer.settings import ProducerSettings
from taskq import TaskLoadError

#: The exit code of a refusal to start (a bad TASKQ_TASKS module): not 1, which a crash also gives.
EXIT_TASKS_DO_NOT_LOAD = 3


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(settings: ProducerSettings) -> int:
    logs.configure(settings.log_level)
    try:
        settings.tasks()
    except TaskLoadError as exc:
        # One line, no traceback: the module, the task and the cause are the whole story, and a
        # traceback of importlib frames would bury them in the container's log.
        logging.getLogger("producer").error(
            "refusing to start: a TASKQ_TASKS module does not load",
            extra={"tasks_module": exc.module, "task": exc.task, "cause": exc.cause, "error": str(exc)},
        )
        return EXIT_TASKS_DO_NOT_LOAD
    # uvicorn handles SIGTERM: stops accepting, finishes in-flight requests, runs the lifespan exit,
    # then re-raises the signal under the handler it found. That handler is this one, so a graceful
    # stop exits 0 (not 143), and a SIGTERM before uvicorn takes over still stops the process.
    import uvicorn  # here, so the healthcheck command starts fast

    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "producer.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_config=logs.log_config(settings.log_level),
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def check(settings: ProducerSettings, timeout: float = 3.0) -> int:
    url = f"http://127.0.0.1:{settings.api_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


def main(argv: list[str]) -> int:
    settings = ProducerSettings()
    if argv[:1] == ["check"]:
        return check(settings)
    if argv:
        print("usage: python -m producer [check]", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
