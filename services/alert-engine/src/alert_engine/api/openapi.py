"""The OpenAPI 3 document for the REST API v1 (Alertmanager's v2 keeps its own spec)."""

from __future__ import annotations

from typing import Any

from alert_engine.api.v2 import VERSION


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = {
    "description": "bad request (the body says why)",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
_AUTH = {
    "401": {"description": "missing or unknown bearer token"},
    "403": {"description": "the token lacks the write scope"},
}
_MATCHER = {
    "type": "object",
    "required": ["name", "value", "isRegex"],
    "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
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
        "matchers": {"type": "array", "items": _MATCHER},
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string", "format": "date-time"},
        "createdBy": {"type": "string"},
        "comment": {"type": "string"},
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
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "opsmesh alert-engine REST API",
            "version": VERSION,
            "description": "Rules, alerts, silences, history and explain. Mutating "
            "endpoints need a bearer token with the write scope. "
            "Alertmanager's API v2 is served under /api/v2.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
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
                            "application/json": {"schema": {"type": "object"}},
                        },
                    },
                    "responses": {
                        "201": _json({"type": "object"}, "stored"),
                        "400": _ERROR,
                        "409": {"description": "the group comes from a rule file"},
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
                        "404": {"description": "unknown"},
                        "409": {"description": "the group comes from a rule file"},
                        **_AUTH,
                    },
                },
            },
            "/api/v1/alerts": {
                "get": {
                    "summary": "Alerts in the book, and pending rule alerts",
                    "parameters": [
                        {"name": "resolved", "in": "query", "schema": {"type": "boolean"}}
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "alerts": {"type": "array", "items": _ALERT},
                                    "pending": {"type": "array", "items": {"type": "object"}},
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
                        "404": {"description": "unknown"},
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
                        "404": {"description": "no silence with that id"},
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
                        "404": {"description": "unknown"},
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
                            "schema": {"type": "string"},
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
                    "responses": {"200": _json({"type": "array", "items": {"type": "object"}})},
                }
            },
            "/api/v1/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}
            },
        },
    }
