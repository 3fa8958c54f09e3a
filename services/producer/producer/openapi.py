"""OpenAPI: every error response documented as ``application/problem+json``, and bearer auth."""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from producer.middleware import PUBLIC_PATHS
from producer.problems import PROBLEM_JSON, Problem
from producer.schemas import IDEMPOTENCY_KEY_PATTERN
from taskq import Task, TaskRegistry

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


def _task_variants(
    schemas: dict[str, Any], registry: TaskRegistry, declared: frozenset[str] | None = None
) -> None:
    """``JobRequest`` becomes one variant per registered task (``task`` is its name, ``args`` its
    model), so a client, and a fuzzer, knows which args go with which task, and which queues
    (``declared``, None: any valid name) the server accepts."""
    base = schemas["JobRequest"]
    refs: dict[str, str] = {}
    for spec in registry:
        args_schema = spec.args_model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(args_schema.pop("$defs", {}))
        schemas[spec.args_model.__name__] = args_schema
        variant = copy.deepcopy(base)
        variant.pop("examples", None) if spec.name != "send_email" else None
        variant["title"] = f"JobRequest ({spec.name})"
        variant["properties"]["task"] = {
            "type": "string",
            "const": spec.name,
            "description": spec.description,
        }
        variant["properties"]["args"] = {"$ref": f"#/components/schemas/{spec.args_model.__name__}"}
        if args_schema.get("required"):
            variant["required"] = [*variant.get("required", []), "args"]
        variant["not"] = {"required": ["delay_seconds", "run_at"]}  # one schedule at most
        if declared is not None:
            queue = variant["properties"]["queue"]
            queue["anyOf"] = [{"type": "string", "enum": sorted(declared)}, {"type": "null"}]
        _task_defaults(variant["properties"], spec)
        name = f"JobRequest.{spec.name}"
        schemas[name] = variant
        refs[spec.name] = f"#/components/schemas/{name}"
    schemas["JobRequest"] = {
        "title": "JobRequest",
        "description": base.get("description", ""),
        "oneOf": [{"$ref": ref} for ref in refs.values()],
        "discriminator": {"propertyName": "task", "mapping": refs},
    }


#: The request fields that, omitted, take the task's option of the same name (``Task.options``).
_REQUEST_OPTIONS = ("queue", "priority", "max_attempts", "timeout_seconds")


def _task_defaults(properties: dict[str, Any], spec: Task[Any]) -> None:
    """Each option a request may omit shows this task's value as its default (an option the task
    leaves to the deployment keeps null: the deployment's default, not known to the schema)."""
    options = spec.options()
    for field in _REQUEST_OPTIONS:
        value = options[field]
        if value is not None:
            properties[field] = {
                **properties[field],
                "default": value,
                "description": f"{properties[field].get('description', '')} (this task: {value})",
            }


#: email-validator refuses the special-use domains of RFC 6761 that JSON Schema's "email" allows.
NOT_SPECIAL_USE = r"^(?!.*\.(?:arpa|invalid|local|localhost|onion|test)\.?$)"


def _email_patterns(schemas: dict[str, Any]) -> None:
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            if prop.get("format") == "email":
                prop["pattern"] = NOT_SPECIAL_USE


def _idempotency_key(operation: dict[str, Any]) -> None:
    # Checked by hand (a malformed key is a 400, not FastAPI's 422), so its shape is declared here.
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "Idempotency-Key":
            parameter["schema"] = {
                "type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "minLength": 1, "maxLength": 255,
            }  # fmt: skip


def _followed_queues(operation: dict[str, Any], declared: frozenset[str] | None) -> None:
    # GET /events?queue= takes declared queues only (like a job's queue): say which, when known.
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "queue" and parameter["in"] == "query" and declared is not None:
            items = parameter["schema"].get("anyOf", [{}])[0].get("items")
            if isinstance(items, dict):
                items["enum"] = sorted(declared)


def install_openapi(app: FastAPI, *, auth: bool, registry: TaskRegistry) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        _task_variants(schema["components"]["schemas"], registry, app.state.settings.declared_queues())
        _email_patterns(schema["components"]["schemas"])
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "API_TOKEN, when the server has one",
        }
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                _idempotency_key(operation)
                if path == "/events":
                    _followed_queues(operation, app.state.settings.declared_queues())
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
