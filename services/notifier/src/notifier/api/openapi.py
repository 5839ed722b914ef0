"""The OpenAPI 3 document of notifier's HTTP API (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from notifier.receivers.config import IntegrationKind
from opsmesh.web.openapi import error, response, service_document


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        out["description"] = description
    return out


_NULLABLE_STRING = {"type": ["string", "null"]}
_DELIVERY: dict[str, Any] = {
    "type": "object",
    "required": ["idempotency_key", "integration", "receiver", "result", "attempts"],
    "properties": {
        "idempotency_key": {"type": "string"},
        "integration": {"type": "string"},
        "receiver": {"type": "string"},
        "channel": {"type": "string"},
        "result": {"type": "string"},
        "attempts": {"type": "integer"},
        "retries": {"type": "integer", "description": "attempts - 1"},
        "status_code": {"type": ["integer", "null"]},
        "error": _NULLABLE_STRING,
        "finished_at": {"type": "number"},
    },
}
_INTEGRATION: dict[str, Any] = {
    "type": "object",
    "required": ["receiver", "integration", "delivered", "failed", "breaker", "configured"],
    "properties": {
        "receiver": {"type": "string"},
        "integration": {"type": "string"},
        "configured": {"type": "boolean"},
        "delivered": {"type": "integer"},
        "failed": {"type": "integer"},
        "retried": {"type": "integer", "description": "deliveries that took more than one send"},
        "retries": {"type": "integer", "description": "sends beyond the first, in all"},
        "last_failure_at": {"type": ["number", "null"]},
        "last_error": _NULLABLE_STRING,
        "breaker": {
            "type": "object",
            "properties": {
                "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
                "failures": {"type": "integer"},
                "retry_in_s": {"type": "number"},
            },
        },
    },
}
_LETTER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "reason", "error", "replayable"],
    "properties": {
        "id": {"type": "string"},
        "reason": {"type": "string"},
        "error": {"type": "string"},
        "integration": _NULLABLE_STRING,
        "failed_at": {"type": ["number", "null"]},
        "replayable": {"type": "boolean"},
        "replayed_from": _NULLABLE_STRING,
        "idempotency_key": {"type": "string"},
        "receiver": {"type": "string"},
        "group_key": {"type": "string"},
        "status": {"type": "string"},
        "notify_reason": {"type": "string"},
        "fingerprints": {"type": "array", "items": {"type": "string"}},
        "purge_id": {"type": "string", "description": "a CDN purge's id"},
        "scope": {"type": "string", "description": "a CDN purge's scope"},
        "values": {"type": "array", "items": {"type": "string"}},
        "providers": {"type": "array", "items": {"type": "string"}},
        "delivery_now": {"type": ["string", "null"], "description": "the log's outcome now"},
    },
}

DOCUMENT: dict[str, Any] = service_document(
    title="opsmesh notifier",
    version="1",
    description="Delivery of alert-engine's notification requests. Its HTTP API never "
    "shows a receiver's settings (URLs, keys, addresses): only names and integration "
    "kinds. `POST /-/reload` (a `write` token from NOTIFIER_API_TOKENS) re-reads the "
    "receivers file, as Alertmanager's endpoint does.",
    paths={
        "/api/v1/receivers": {
            "get": {
                "summary": "The receivers this notifier delivers to, and their integrations",
                "tags": ["receivers"],
                "responses": {
                    "200": response(
                        "the receivers",
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "integrations"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "integrations": {
                                        "type": "array",
                                        "items": {
                                            "type": "string",
                                            "description": "<kind>-<index>",
                                            "pattern": "^("
                                            + "|".join(k.value for k in IntegrationKind)
                                            + r")-[0-9]+$",
                                        },
                                    },
                                },
                            },
                        },
                    )
                },
            }
        },
        "/api/v1/deliveries": {
            "get": {
                "summary": "The delivery log, newest first: one row per (idempotency key, "
                "integration), its last outcome and all its attempts",
                "tags": ["deliveries"],
                "parameters": [
                    _query("receiver", {"type": "string"}),
                    _query("integration", {"type": "string"}),
                    _query("result", {"type": "string", "enum": ["delivered", "failed"]}),
                    _query(
                        "idempotency_key",
                        {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                        "repeatable: the keys the alert-engine's notification log names",
                    ),
                    _query(
                        "before",
                        {"type": "number", "minimum": 0},
                        "finished before (the last row's finished_at: the next page)",
                    ),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
                "responses": {
                    "200": response("the deliveries", {"type": "array", "items": _DELIVERY}),
                    "400": error("a parameter out of range"),
                },
            }
        },
        "/api/v1/deliveries/summary": {
            "get": {
                "summary": "Per receiver and integration: delivered, failed and retried "
                "deliveries in the window, the last failure, and this instance's circuit "
                "breaker",
                "tags": ["deliveries"],
                "parameters": [
                    _query("window_s", {"type": "number", "minimum": 60, "maximum": 2592000})
                ],
                "responses": {
                    "200": response(
                        "the integrations",
                        {
                            "type": "object",
                            "required": ["window_s", "integrations"],
                            "properties": {
                                "window_s": {"type": "number"},
                                "integrations": {"type": "array", "items": _INTEGRATION},
                            },
                        },
                    ),
                    "400": error("a parameter out of range"),
                },
            }
        },
        "/api/v1/dead-letters": {
            "get": {
                "summary": "The notification requests and CDN purges this notifier "
                "dead-lettered (among the newest `scan` records of each DLQ partition), newest "
                "first; a purge's letter has receiver `cdn` and integration `cdn:<provider>`",
                "tags": ["deliveries"],
                "parameters": [
                    _query("receiver", {"type": "string"}),
                    _query("group_key", {"type": "string"}),
                    _query("integration", {"type": "string"}),
                    _query("idempotency_key", {"type": "string"}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                    _query("scan", {"type": "integer", "minimum": 1, "maximum": 5000}),
                ],
                "responses": {
                    "200": response("the dead letters", {"type": "array", "items": _LETTER}),
                    "400": error("a parameter out of range"),
                },
            }
        },
        "/api/v1/dead-letters/{id}/replay": {
            "post": {
                "summary": "Send a dead-lettered request (or CDN purge) back to the topic it "
                "came from; the integrations (providers) it had already been delivered to "
                "are skipped",
                "tags": ["deliveries"],
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
                        "description": "<DLQ partition>-<offset>",
                    }
                ],
                "responses": {
                    "202": response(
                        "sent back",
                        {
                            "type": "object",
                            "required": ["replayed", "topic"],
                            "properties": {
                                "replayed": {"type": "string"},
                                "topic": {"type": "string"},
                            },
                        },
                    ),
                    "401": {"description": "no token, or an unknown one"},
                    "403": {"description": "the token lacks the `write` scope"},
                    "404": error("no dead letter of this notifier with that id"),
                    "409": error("the letter kept only a prefix of the request"),
                },
            }
        },
        "/-/reload": {
            "post": {
                "summary": "Re-read the receivers file; a file that does not load is refused "
                "and the receivers in use stay",
                "tags": ["configuration"],
                "security": [{"bearer": []}],
                "responses": {
                    "200": {"description": "loaded"},
                    "400": {"description": "refused: `failed to reload config: <where>: <why>`"},
                    "401": {"description": "no token, or an unknown one"},
                    "403": {"description": "the token lacks the `write` scope"},
                },
            }
        },
    },
    components={"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
)
