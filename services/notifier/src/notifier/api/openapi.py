"""The OpenAPI 3 document of notifier's HTTP API (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from notifier.receivers.config import IntegrationKind
from opsmesh.web.openapi import response, service_document

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
