"""taskq producer: the HTTP API that accepts work (FastAPI, served by uvicorn).

``python -m producer`` serves ``create_app``; routers live in ``producer.api``, one per resource.
Imports are lazy so ``python -m producer check`` (the container healthcheck) does not load FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producer.main import create_app
    from producer.settings import ProducerSettings

__all__ = ["ProducerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from producer.main import create_app

        return create_app
    if name == "ProducerSettings":
        from producer.settings import ProducerSettings

        return ProducerSettings
    raise AttributeError(name)
