"""taskq producer: the HTTP API that accepts work (FastAPI, served by uvicorn).

``python -m producer`` serves ``create_app``; routers live in ``producer.api``, one per resource.
"""

from producer.main import create_app
from producer.settings import ProducerSettings

__all__ = ["ProducerSettings", "create_app"]
