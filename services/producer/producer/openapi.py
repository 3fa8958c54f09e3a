"""OpenAPI: every error response documented as ``application/problem+json``, and bearer auth."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from producer.middleware import PUBLIC_PATHS
from producer.problems import PROBLEM_JSON, Problem

#: Errors any route can answer: auth, rate limit, Redis outage.
COMMON = (401, 429, 503)
#: Errors of routes with a JSON body: malformed, too large, not JSON.
BODY = (413, 415, 422)

_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}},
    405: {"Allow": {"description": "The methods the path allows", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}},
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these error codes (FastAPI documents them with the Problem model)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": Problem, "description": HTTPStatus(code).phrase}
        if code in _HEADERS:
            entry["headers"] = _HEADERS[code]
        out[code] = entry
    return out


def install_openapi(app: FastAPI, *, auth: bool) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "API_TOKEN, when the server has one",
        }
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for code, response in responses.items():
                    # FastAPI files error models under application/json; they are problem+json.
                    if code.isdigit() and int(code) >= 400:
                        response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
                # Declared only when enforced: a client (or a fuzzer) must not expect a 401 otherwise.
                if auth and path not in PUBLIC_PATHS:
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
