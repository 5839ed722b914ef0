"""The OpenAPI 3 document of health-aggregator's HTTP API (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from health_aggregator.core.policy import Policy, Reason
from health_aggregator.core.render import MEDIA_TYPE
from opsmesh.events.health import HealthStatus
from opsmesh.web.openapi import ERROR_SCHEMA, service_document

_STATUS = {"type": "string", "enum": [s.value for s in HealthStatus]}
# draft-inadarei-api-health-check-06: a document, its checks keyed "{component}:{measure}".
_CHECK_ENTRY = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "componentId": {"type": "string"},
        "componentType": {"type": "string"},
        "observedValue": {},
        "observedUnit": {"type": "string"},
        "status": _STATUS,
        "time": {"type": "string", "format": "date-time"},
        "output": {"type": "string"},
        "critical": {"type": "boolean"},
        "policy": {"type": "string", "enum": [p.value for p in Policy]},
        "reason": {"type": "string", "enum": [r.value for r in Reason]},
    },
}
_HEALTH_DOC = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": _STATUS,
        "version": {"type": "string"},
        "serviceId": {"type": "string"},
        "description": {"type": "string"},
        "output": {"type": "string"},
        "checks": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": _CHECK_ENTRY},
        },
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "a service name as reported in its health events",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
_UNKNOWN = {
    "description": "no service of that name has reported",
    "content": {"application/json": {"schema": ERROR_SCHEMA}},
}
_CHECK_DETAIL = {
    "type": "object",
    "required": ["instance", "check", "status", "critical", "reported_at", "expires_at"],
    "properties": {
        "instance": {"type": "string"},
        "check": {"type": "string"},
        "status": _STATUS,
        "critical": {"type": "boolean"},
        "output": {"type": "string", "nullable": True},
        "reported_at": {"type": "number"},
        "expires_at": {"type": "number"},
    },
}
_DETAIL = {
    "type": "object",
    "required": ["service", "status", "policy", "reason", "healthy", "total", "checks"],
    "properties": {
        "service": {"type": "string"},
        "status": _STATUS,
        "policy": {"type": "string", "enum": [p.value for p in Policy]},
        "reason": {"type": "string", "enum": [r.value for r in Reason]},
        "healthy": {"type": "integer", "minimum": 0},
        "total": {"type": "integer", "minimum": 0},
        "checks": {"type": "array", "items": _CHECK_DETAIL},
    },
}
_HISTORY = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["instance", "check", "status", "at"],
        "properties": {
            "instance": {"type": "string"},
            "check": {"type": "string"},
            "previous": {**_STATUS, "nullable": True},
            "status": _STATUS,
            "cause": {"type": "string", "nullable": True},
            "at": {"type": "number"},
        },
    },
}


def _health(description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": _HEALTH_DOC}}}


def openapi_document(history_limit: int) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/health/": {
            "get": {
                "summary": "The fleet: one check per service (pass and warn: 200, fail: 503)",
                "tags": ["health"],
                "responses": {
                    "200": _health("the fleet passes or warns"),
                    "503": _health("the fleet fails"),
                },
            }
        },
        "/health/live/": {
            "get": {
                "summary": "This aggregator's process answers (never the fleet's state)",
                "tags": ["health"],
                "responses": {"200": _health("alive")},
            }
        },
        "/health/ready/": {
            "get": {
                "summary": "This aggregator can serve: its own dependencies, partitions "
                "loaded, view warm (never the fleet's state)",
                "tags": ["health"],
                "responses": {"200": _health("ready"), "503": _health("not ready")},
            }
        },
        "/health/check/{name}/": {
            "get": {
                "summary": "One service, per check and instance",
                "tags": ["health"],
                "parameters": [_NAME],
                "responses": {
                    "200": _health("the service passes or warns"),
                    "503": _health("the service fails"),
                    "404": _UNKNOWN,
                },
            }
        },
        "/api/v1/services": {
            "get": {
                "summary": "Every service with its status, policy, reason and checks",
                "tags": ["services"],
                "responses": {
                    "200": {
                        "description": "the services, by name",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": _DETAIL}}
                        },
                    }
                },
            }
        },
        "/api/v1/services/{name}": {
            "get": {
                "summary": f"One service and its latest {history_limit} status changes",
                "tags": ["services"],
                "parameters": [_NAME],
                "responses": {
                    "200": {
                        "description": "the service",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "allOf": [
                                        _DETAIL,
                                        {
                                            "type": "object",
                                            "required": ["history"],
                                            "properties": {
                                                "history": {
                                                    **_HISTORY,
                                                    "maxItems": history_limit,
                                                }
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "404": _UNKNOWN,
                },
            }
        },
    }
    return service_document(
        title="opsmesh health-aggregator",
        version="1",
        description="Health of every service reporting to opsmesh, in "
        "application/health+json (draft-inadarei-api-health-check-06), and its detail and "
        "history. Read-only; no token. Errors are JSON: an `error` reason and a `detail`.",
        paths=paths,
    )
