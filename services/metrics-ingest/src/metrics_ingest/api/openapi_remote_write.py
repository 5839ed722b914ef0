"""The OpenAPI paths of ``POST /api/v1/write`` (Prometheus remote write), merged into
the service's document by ``api/openapi.py``."""

from __future__ import annotations

from typing import Any

from metrics_ingest.api.remote_write import PATH as REMOTE_WRITE
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.remote_write import CONTENT_TYPE as RW_CONTENT_TYPE
from metrics_ingest.rollup.remote_write import BodyProblem, Refusal
from opsmesh.web.openapi import ERROR_SCHEMA, error, response

# Shared with openapi.py's other write endpoints.
AUTH_ERROR = {
    "description": "missing or wrong bearer token",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": ERROR_SCHEMA}},
}


def remote_write_paths(limits: IngestLimits, max_body_bytes: int) -> dict[str, Any]:
    refused = {"type": "string", "enum": [r.value for r in Refusal]}
    problems = [p.value for p in BodyProblem if p is not BodyProblem.TOO_LARGE]
    return {
        REMOTE_WRITE: {
            "post": {
                "summary": "Prometheus Remote-Write 1.0: every sample published as a metric "
                "sample; 4xx is final, 5xx worth a retry",
                "tags": ["ingest"],
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "Content-Encoding",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "enum": ["snappy"]},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "description": "a snappy block (not framed) of a protobuf "
                    f"prometheus.WriteRequest, at most {max_body_bytes} bytes either way "
                    f"and {limits.max_samples} samples",
                    "content": {
                        RW_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                "responses": {
                    "204": {
                        "description": "every sample published (NaN and stale markers skipped)"
                    },
                    "400": response(
                        "the body is not snappy or not a WriteRequest, or some series or "
                        "samples were refused (the others are published)",
                        {
                            **ERROR_SCHEMA,
                            "properties": {
                                "error": {
                                    "type": "string",
                                    "enum": [*problems, "samples_refused", "unreadable_body"],
                                },
                                "detail": {"type": "string"},
                                "accepted": {"type": "integer", "minimum": 0},
                                "refused": {
                                    "type": "object",
                                    "propertyNames": refused,
                                    "additionalProperties": {"type": "integer"},
                                },
                            },
                        },
                    ),
                    "401": AUTH_ERROR,
                    "413": error(
                        f"more than {max_body_bytes} bytes, compressed or not, or more than "
                        f"{limits.max_samples} samples"
                    ),
                    "415": error("not snappy, not application/x-protobuf, or Remote-Write 2.0"),
                    "503": error(
                        "no API token is configured, or the broker cannot take the samples "
                        "now (Retry-After)"
                    ),
                },
            }
        }
    }
