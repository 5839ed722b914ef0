"""The OpenAPI 3 document of metrics-ingest's HTTP API (served at /api/v1/openapi.json).

Built from the running limits, so the maxima it states are the ones enforced.
"""

from __future__ import annotations

from typing import Any

from metrics_ingest.api.events import ENDPOINTS
from metrics_ingest.api.openapi_remote_write import AUTH_ERROR, remote_write_paths
from metrics_ingest.rollup.decompress import ENCODINGS, DecodeProblem
from metrics_ingest.rollup.ingest import BodyError, IngestLimits, RejectReason
from metrics_ingest.rollup.query import (
    MATCHER_PATTERN,
    MAX_MATCHER_LENGTH,
    MAX_MATCHERS,
    QueryError,
)
from opsmesh.events.base import LABEL_NAME_PATTERN
from opsmesh.events.metrics import METRIC_NAME_PATTERN, MetricKind
from opsmesh.events.schema import schema_file_name
from opsmesh.web.openapi import ERROR_SCHEMA, error, response, service_document

_FINITE_NUMBER = {"type": "number", "description": "a finite number (JSON has no NaN or Inf)"}
_LABELS = {
    "type": "object",
    "maxProperties": 64,
    "description": f"label names match {LABEL_NAME_PATTERN}, at most 100 characters",
    "additionalProperties": {"type": "string", "maxLength": 1024},
}
_BUCKET = {
    "type": "object",
    "required": ["le", "count"],
    "properties": {
        "le": {
            "description": 'upper bound; "+Inf", "Inf" or null for the +Inf bucket',
            "oneOf": [{"type": "number"}, {"type": "string", "maxLength": 32}],
            "nullable": True,
        },
        "count": {"type": "number", "minimum": 0},
    },
}
_SAMPLE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "value"],
    "description": "One sample. Checked on its own: a sample that breaks a rule the schema "
    "cannot state (sampled_at within the accepted window around the receive time, a "
    "counter never negative, a histogram's buckets increasing with cumulative counts) is "
    "reported in `rejected` with its reason, and the others are accepted.",
    "properties": {
        "name": {"type": "string", "pattern": METRIC_NAME_PATTERN, "maxLength": 200},
        "value": _FINITE_NUMBER,
        "kind": {"type": "string", "enum": [k.value for k in MetricKind], "default": "gauge"},
        "labels": _LABELS,
        "sampled_at": {
            "type": "number",
            "nullable": True,
            "description": "epoch seconds; default the receive time",
        },
        "timestamp": {"type": "number", "nullable": True, "description": "sampled_at's alias"},
        "buckets": {
            "type": "array",
            "items": _BUCKET,
            "maxItems": 65,
            "nullable": True,
            "description": "histograms only: cumulative buckets, +Inf included or not",
        },
        "count": {"type": "number", "minimum": 0, "nullable": True},
        "schema_version": {"type": "integer", "default": 1},
    },
}
_RESULT = {
    "type": "object",
    "required": ["accepted", "rejected"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "reason", "detail"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "reason": {"type": "string", "enum": [r.value for r in RejectReason]},
                    "detail": {"type": "string", "maxLength": 300},
                },
            },
        },
    },
}
_BODY_ERROR = {
    **ERROR_SCHEMA,
    "properties": {
        "error": {
            "type": "string",
            "enum": [*(e.value for e in BodyError), DecodeProblem.UNREADABLE.value],
        },
        "detail": {"type": "string"},
    },
}
_POINT = {
    "type": "object",
    "properties": {
        "t": {"type": "number"},
        "count": {"type": "integer"},
        "sum": {"type": "number"},
        "min": {"type": "number"},
        "max": {"type": "number"},
        "last": {"type": "number"},
        "mean": {"type": "number", "nullable": True},
        "increase": {"type": "number"},
        "rate": {"type": "number"},
    },
}


def _event_ingest(limits: IngestLimits, max_body_bytes: int) -> dict[str, Any]:
    """``POST /api/v1/slow-queries`` and ``/api/v1/health-reports``: each event is checked
    against its type by the service (its JSON Schema is in docs/schemas), so the document
    states only the batch's shape."""
    paths: dict[str, Any] = {}
    for path, event_type, topic, _ in ENDPOINTS:
        paths[path] = {
            "post": {
                "summary": f"Ingest a batch of {event_type.__name__} events into {topic.name}",
                "tags": ["ingest"],
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "description": f"at most {max_body_bytes} bytes once decompressed",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["events"],
                                "additionalProperties": False,
                                "properties": {
                                    "events": {
                                        "type": "array",
                                        "maxItems": limits.max_samples,
                                        "items": {
                                            "type": "object",
                                            "description": f"a {event_type.__name__} "
                                            f"({schema_file_name(event_type)})",
                                        },
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": response("every event accepted", _RESULT),
                    "202": response("some events accepted, the others rejected", _RESULT),
                    "400": response(
                        "the body is unusable, or every event was rejected",
                        {"oneOf": [_BODY_ERROR, _RESULT]},
                    ),
                    "401": AUTH_ERROR,
                    "413": error(
                        f"more than {max_body_bytes} bytes, or more than "
                        f"{limits.max_samples} events"
                    ),
                    "415": error("not JSON, or an unknown Content-Encoding"),
                    "503": error(
                        "no API token is configured (HTTP ingest is off), or the broker did "
                        "not take the records now: send them again after Retry-After"
                    ),
                },
            }
        }
    return paths


def openapi_document(limits: IngestLimits, max_body_bytes: int) -> dict[str, Any]:
    paths: dict[str, Any] = {
        **_event_ingest(limits, max_body_bytes),
        **remote_write_paths(limits, max_body_bytes),
        "/api/v1/metrics": {
            "post": {
                "summary": "Ingest a batch of samples; answered once Kafka has them (acks=all)",
                "tags": ["ingest"],
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "Content-Encoding",
                        "in": "header",
                        "schema": {
                            "type": "string",
                            "enum": sorted(ENCODINGS),
                        },
                        "description": "the body may be compressed; the size limit applies "
                        "to the decompressed body",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "description": f"at most {max_body_bytes} bytes once decompressed",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["samples"],
                                "properties": {
                                    "samples": {
                                        "type": "array",
                                        "maxItems": limits.max_samples,
                                        "items": _SAMPLE,
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": response("every sample accepted", _RESULT),
                    "202": response("some samples accepted, the others rejected", _RESULT),
                    "400": response(
                        "the body is unusable, or every sample was rejected",
                        {"oneOf": [_BODY_ERROR, _RESULT]},
                    ),
                    "401": AUTH_ERROR,
                    "413": error(
                        f"more than {max_body_bytes} bytes, or more than "
                        f"{limits.max_samples} samples"
                    ),
                    "415": error("not JSON, or an unknown Content-Encoding"),
                    "503": error(
                        "no API token is configured (HTTP ingest is off), or the broker did "
                        "not take the records now: send them again after Retry-After"
                    ),
                },
            }
        },
        "/metrics/apps": {
            "get": {
                "summary": "The latest applications' samples, Prometheus text format",
                "tags": ["read"],
                "responses": {
                    "200": {
                        "description": "Prometheus text format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/api/v1/series": {
            "get": {
                "summary": "One metric's rollups over time, re-aggregated into step buckets",
                "tags": ["read"],
                "parameters": [
                    {
                        "name": "name",
                        "in": "query",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "pattern": METRIC_NAME_PATTERN,
                            "maxLength": 200,
                        },
                    },
                    {
                        "name": "match",
                        "in": "query",
                        "description": 'label matchers, label="value" or label!="value"',
                        "style": "form",
                        "explode": True,
                        "schema": {
                            "type": "array",
                            "maxItems": MAX_MATCHERS,
                            "items": {
                                "type": "string",
                                "maxLength": MAX_MATCHER_LENGTH,
                                "pattern": MATCHER_PATTERN,
                            },
                        },
                    },
                    {
                        "name": "start",
                        "in": "query",
                        "description": "epoch seconds or RFC 3339; default end - 1h",
                        "schema": {"type": "string", "maxLength": 64},
                    },
                    {
                        "name": "end",
                        "in": "query",
                        "description": "epoch seconds or RFC 3339; default now",
                        "schema": {"type": "string", "maxLength": 64},
                    },
                    {
                        "name": "step",
                        "in": "query",
                        "description": "seconds or a duration (30s, 5m, 1h), a multiple of a "
                        "window size; default the smallest window",
                        "schema": {"type": "string", "maxLength": 32},
                    },
                ],
                "responses": {
                    "200": response(
                        "the series and their points",
                        {
                            "type": "object",
                            "required": ["name", "start", "end", "step", "window_s", "series"],
                            "properties": {
                                "name": {"type": "string"},
                                "start": {"type": "number"},
                                "end": {"type": "number"},
                                "step": {"type": "number"},
                                "window_s": {"type": "number"},
                                "series": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "series": {"type": "string"},
                                            "labels": {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            },
                                            "points": {"type": "array", "items": _POINT},
                                        },
                                    },
                                },
                            },
                        },
                    ),
                    "400": response(
                        "a parameter is wrong; the reason names it",
                        {
                            **ERROR_SCHEMA,
                            "properties": {
                                "error": {"type": "string", "enum": [q.value for q in QueryError]},
                                "detail": {"type": "string"},
                            },
                        },
                    ),
                },
            }
        },
    }
    return service_document(
        title="opsmesh metrics-ingest",
        version="1",
        description="HTTP ingest of metric samples (published to Kafka, rolled up per "
        "window; JSON, or Prometheus remote write), of slow-query and health events "
        "(published to their topics) for "
        "producers that cannot reach Kafka, and reads of the rollups. POST needs the "
        "bearer token "
        "METRICS_INGEST_API_TOKEN. Errors are JSON: an `error` reason and a `detail`.",
        paths=paths,
        components={"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    )
