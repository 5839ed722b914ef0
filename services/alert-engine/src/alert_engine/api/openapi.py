"""The OpenAPI 3 document of the REST API v1, the management endpoints and the kit's probes.

Alertmanager's API v2 (``/api/v2``) is described by Alertmanager's own specification
(``tests/fixtures/openapi/alertmanager-v2.yaml``). Errors are plain text, as Alertmanager's.
"""

from __future__ import annotations

from typing import Any

from alert_engine.api import MAX_BODY
from alert_engine.api.status import OPSMESH_VERSION
from opsmesh.web.openapi import service_document


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = {
    "description": "bad request (the body says why)",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_TOO_LARGE = {
    "description": f"the body is larger than {MAX_BODY // (1024 * 1024)} MiB",
    "content": _TEXT,
}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": _TEXT}


_AUTH = {
    "401": {
        "description": "missing or unknown bearer token",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        "content": _TEXT,
    },
    "403": _text("the token lacks the write scope"),
}
_READ_AUTH = {
    "401": {**_AUTH["401"], "description": "only with ALERT_ENGINE_READ_REQUIRES_TOKEN"},
    "403": _text("only with ALERT_ENGINE_READ_REQUIRES_TOKEN: the token lacks read"),
}
_MATCHER = {
    "type": "object",
    "required": ["name", "value", "isRegex"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "value": {"type": "string", "maxLength": 4096},
        "isRegex": {"type": "boolean"},
        "isEqual": {"type": "boolean"},
    },
}
_SILENCE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "status": {
            "type": "object",
            "properties": {"state": {"type": "string", "enum": ["pending", "active", "expired"]}},
        },
        "matchers": {"type": "array", "items": _MATCHER, "minItems": 1, "maxItems": 64},
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string", "format": "date-time"},
        "createdBy": {"type": "string", "maxLength": 256},
        "comment": {"type": "string", "maxLength": 4096},
        "updatedAt": {"type": "string", "format": "date-time"},
    },
}
_SILENCE_FIELDS: dict[str, Any] = _SILENCE["properties"]
_POSTABLE_SILENCE = {
    "type": "object",
    "required": ["matchers", "startsAt", "endsAt", "createdBy", "comment"],
    "properties": {k: v for k, v in _SILENCE_FIELDS.items() if k not in ("status", "updatedAt")},
}
_ALERT = {
    "type": "object",
    "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "fingerprint": {"type": "string"},
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string", "format": "date-time"},
        "updatedAt": {"type": "string", "format": "date-time"},
        "source": {"type": "string", "enum": ["rule", "api"]},
        "resolved": {"type": "boolean"},
        "receivers": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
        "status": {
            "type": "object",
            "properties": {
                "state": {"type": "string", "enum": ["active", "suppressed"]},
                "silencedBy": {"type": "array", "items": {"type": "string"}},
                "inhibitedBy": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
# A rule alert whose condition holds but whose ``for`` has not elapsed yet (never routed).
_PENDING = {
    "type": "object",
    "required": ["fingerprint", "rule", "state", "labels", "value", "active_at"],
    "properties": {
        "fingerprint": {"type": "string"},
        "rule": {"type": "string", "description": "the rule's name"},
        "state": {"type": "string", "enum": ["pending"]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "value": {"type": "number", "nullable": True},
        "active_at": {
            "type": "number",
            "nullable": True,
            "description": "epoch seconds: when the condition first held",
        },
    },
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
}


def openapi_document() -> dict[str, Any]:
    document = _document()
    for path, item in document["paths"].items():
        if path.startswith("/api/v1/") and "get" in item:
            item["get"]["responses"].update(_READ_AUTH)
    return document


def _document() -> dict[str, Any]:
    return service_document(
        title="opsmesh alert-engine REST API",
        version=OPSMESH_VERSION,
        description="Rules, alerts, silences, history and explain. Mutating "
        "endpoints need a bearer token with the write scope; reads need one with the read "
        "scope when ALERT_ENGINE_READ_REQUIRES_TOKEN is set (401/403 otherwise). "
        "Alertmanager's API v2 is served under /api/v2 and described by Alertmanager's own "
        "specification. Errors are plain text.",
        components={"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        paths={
            "/api/v1/rules": {
                "get": {
                    "summary": "Loaded rules (origin: file or api)",
                    "responses": {"200": _json({"type": "array", "items": {"type": "object"}})},
                },
                "post": {
                    "summary": "Create or replace rule groups from a rule file in the body",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/yaml": {"schema": {"type": "string"}},
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["groups"],
                                    "properties": {
                                        "groups": {
                                            "type": "array",
                                            "minItems": 1,
                                            "items": {
                                                "type": "object",
                                                "required": ["name", "rules"],
                                                "properties": {
                                                    "name": {"type": "string", "minLength": 1},
                                                    "rules": {
                                                        "type": "array",
                                                        "items": {"type": "object"},
                                                    },
                                                },
                                            },
                                        }
                                    },
                                }
                            },
                        },
                    },
                    "responses": {
                        "201": _json({"type": "object"}, "stored"),
                        "400": _ERROR,
                        "413": _TOO_LARGE,
                        "409": _text("the group comes from a rule file"),
                        **_AUTH,
                    },
                },
            },
            "/api/v1/rules/{group}": {
                "delete": {
                    "summary": "Delete a rule group created through the API",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "group",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json({"type": "object"}),
                        "404": _text("unknown"),
                        "409": _text("the group comes from a rule file"),
                        **_AUTH,
                    },
                },
            },
            "/api/v1/alerts": {
                "get": {
                    "summary": "Active alerts, and pending rule alerts",
                    "parameters": [
                        {"name": "resolved", "in": "query", "schema": {"type": "boolean"}},
                        {
                            "name": "pending_only",
                            "in": "query",
                            "description": "true: the pending rule alerts alone, `alerts`"
                            " left empty (what a poller of pending alerts asks)",
                            "schema": {"type": "boolean", "default": False},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "alerts": {"type": "array", "items": _ALERT},
                                    "pending": {"type": "array", "items": _PENDING},
                                },
                            }
                        ),
                        "400": _ERROR,
                    },
                }
            },
            "/api/v1/alerts/{fingerprint}/history": {
                "get": {
                    "summary": "Every state transition of one alert",
                    "parameters": [
                        {
                            "name": "fingerprint",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        _LIMIT,
                    ],
                    "responses": {
                        "200": _json({"type": "object"}),
                        "400": _ERROR,
                        "404": _text("unknown"),
                    },
                }
            },
            "/api/v1/silences": {
                "get": {
                    "summary": "All silences",
                    "responses": {"200": _json({"type": "array", "items": _SILENCE})},
                },
                "post": {
                    "summary": "Create or update a silence",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _POSTABLE_SILENCE}},
                    },
                    "responses": {
                        "201": _json(_SILENCE, "created"),
                        "400": _ERROR,
                        "413": _TOO_LARGE,
                        "404": _text("no silence with that id"),
                        **_AUTH,
                    },
                },
            },
            "/api/v1/silences/{silence_id}": {
                "delete": {
                    "summary": "Expire a silence now",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "silence_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json(_SILENCE),
                        "400": _ERROR,
                        "404": _text("unknown"),
                        **_AUTH,
                    },
                }
            },
            "/api/v1/explain": {
                "get": {
                    "summary": "Where a label set goes: routes, receiver, group key, timers, mutes",
                    "parameters": [
                        {
                            "name": "labels",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1},
                            "example": '{alertname="X",team="db"}',
                        }
                    ],
                    "responses": {"200": _json({"type": "object"}), "400": _ERROR},
                }
            },
            "/api/v1/suppressed": {
                "get": {
                    "summary": "Notifications held back by a receiver's rate limit",
                    "parameters": [_LIMIT],
                    "responses": {
                        "200": _json({"type": "array", "items": {"type": "object"}}),
                        "400": _ERROR,
                    },
                }
            },
            "/api/v1/notifications": {
                "get": {
                    "summary": "The notification log: the last notification of each group to "
                    "each receiver, its reason and idempotency key (the notifier's "
                    "/api/v1/deliveries?idempotency_key= has its delivery results)",
                    "parameters": [
                        {"name": "fingerprint", "in": "query", "schema": {"type": "string"}},
                        {"name": "group_key", "in": "query", "schema": {"type": "string"}},
                        {"name": "receiver", "in": "query", "schema": {"type": "string"}},
                        _LIMIT,
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": [
                                        "group_key",
                                        "receiver",
                                        "firing",
                                        "resolved",
                                        "reason",
                                        "idempotency_key",
                                        "notified_at",
                                    ],
                                    "properties": {
                                        "group_key": {"type": "string"},
                                        "receiver": {"type": "string"},
                                        "firing": {"type": "array", "items": {"type": "string"}},
                                        "resolved": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                        },
                                        "sequence": {"type": "integer"},
                                        "reason": {"type": "string"},
                                        "idempotency_key": {"type": "string"},
                                        "notified_at": {"type": "number"},
                                    },
                                },
                            }
                        ),
                        "400": _ERROR,
                    },
                }
            },
            "/-/reload": {
                "post": {
                    "summary": "Re-read the rules and configuration files, as Alertmanager's "
                    "endpoint does; a file that does not load is refused and the one in use "
                    "stays",
                    "tags": ["configuration"],
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _text("configuration reloaded"),
                        "400": _text("refused: `failed to reload config: <where>: <why>`"),
                        **_AUTH,
                        "503": _text("a valid file cannot be applied now: try again"),
                    },
                }
            },
            "/-/healthy": {
                "get": {
                    "summary": "Alertmanager's liveness endpoint",
                    "tags": ["probes"],
                    "responses": {"200": _text("OK")},
                }
            },
            "/-/ready": {
                "get": {
                    "summary": "Alertmanager's readiness endpoint: state restored",
                    "tags": ["probes"],
                    "responses": {"200": _text("OK"), "503": _text("restoring state")},
                }
            },
        },
    )
