"""OpenAPI 3 building blocks every service shares: the kit's own endpoints, the error
shape, and the route that serves a service's document at ``/api/v1/openapi.json``.

Each service writes its document as data next to its handlers and assembles it with
``service_document``; ``tests/api_fuzz`` runs schemathesis against every document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aiohttp import web

OPENAPI_PATH = "/api/v1/openapi.json"
Schema = dict[str, Any]


def response(description: str, schema: Schema | None = None, **content: Schema) -> Schema:
    """A response object; ``schema`` is JSON, ``content`` maps other media types."""
    out: Schema = {"description": description}
    media: Schema = dict(content)
    if schema is not None:
        media["application/json"] = {"schema": schema}
    if media:
        out["content"] = media
    return out


# ``{"error": <reason>, "detail": <text>}``: the 4xx body of the services written with the
# kit (metrics-ingest, health-aggregator, query-analyzer, notifier). ``error`` is a named
# reason a client can branch on; ``detail`` says what was wrong, for a human.
ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "the reason, a stable name"},
        "detail": {"type": "string", "description": "what was wrong, for a human"},
    },
}


def error(description: str) -> Schema:
    return response(description, ERROR_SCHEMA)


# aiohttp's own answers before a handler runs (an unreadable request line or header,
# a body over the service's ``client_max_size``): plain text.
TEXT_ERROR: Schema = {"text/plain": {"schema": {"type": "string"}}}


def _kit_paths() -> Schema:
    ready_checks = {
        "type": "object",
        "description": "each readiness check: ok, or why it failed",
        "additionalProperties": {"type": "string"},
    }
    ready = {
        "type": "object",
        "required": ["status", "service", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not_ready"]},
            "service": {"type": "string"},
            "checks": ready_checks,
        },
    }
    return {
        "/health/live": {
            "get": {
                "summary": "Liveness: the process answers (never depends on other systems)",
                "tags": ["probes"],
                "responses": {
                    "200": response(
                        "alive",
                        {
                            "type": "object",
                            "required": ["status", "service"],
                            "properties": {
                                "status": {"type": "string", "enum": ["alive"]},
                                "service": {"type": "string"},
                            },
                        },
                    )
                },
            }
        },
        "/health/ready": {
            "get": {
                "summary": "Readiness: the service's own Kafka, PostgreSQL, Redis and "
                "consumers answer",
                "tags": ["probes"],
                "responses": {
                    "200": response("ready", ready),
                    "503": response("not ready: the checks say why", ready),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus text exposition of the service's metrics",
                "tags": ["probes"],
                "responses": {
                    "200": {
                        "description": "Prometheus text format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "summary": "This document",
                "tags": ["meta"],
                "responses": {"200": response("the OpenAPI document", {"type": "object"})},
            }
        },
    }


def service_document(
    *,
    title: str,
    version: str,
    description: str,
    paths: Mapping[str, Schema],
    components: Mapping[str, Schema] | None = None,
    kit: bool = True,
) -> Schema:
    """An OpenAPI 3.0 document: the service's ``paths`` plus the kit's probes and metrics
    (``kit=False`` leaves them out, for a document that describes part of an API)."""
    all_paths: Schema = {**(_kit_paths() if kit else {}), **copy.deepcopy(dict(paths))}
    for item in all_paths.values():
        for operation in item.values():
            bad_request = operation.get("responses", {}).get("400")
            if operation.get("parameters") and bad_request is not None:
                # A request line or header past aiohttp's limits (8190 bytes) is refused
                # by its parser, before any handler, in plain text.
                bad_request.setdefault("content", {}).update(TEXT_ERROR)
    document: Schema = {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version, "description": description},
        "paths": all_paths,
    }
    if components:
        document["components"] = copy.deepcopy(dict(components))
    return document


def add_openapi_route(app: web.Application, document: Schema) -> None:
    """Serve ``document`` at ``/api/v1/openapi.json``."""

    async def serve(_: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get(OPENAPI_PATH, serve)
