"""The OpenAPI 3 document of query-analyzer's REST API (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from opsmesh.web.openapi import error, service_document

_ERROR = error("bad input: `error` says what is wrong")
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 20},
}
_DATABASE = {
    "name": "database",
    "in": "query",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
_ROUTE_PROFILE = {
    "type": "object",
    "properties": {
        "service": {"type": "string"},
        "route": {"type": "string"},
        "profiles": {"type": "integer"},
        "slow_profiles": {"type": "integer"},
        "samples": {"type": "integer"},
        "total_ms": {"type": "number"},
        "mean_ms": {"type": "number"},
        "max_ms": {"type": "number"},
        "slowest_trace_id": {"type": "string", "nullable": True},
        "last_seen": {"type": "number"},
        "memory_profiles": {"type": "integer"},
        "memory_peak_mean_bytes": {"type": "number", "nullable": True},
        "memory_peak_max_bytes": {"type": "number", "nullable": True},
        "memory_net_mean_bytes": {"type": "number", "nullable": True},
        "functions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "function": {"type": "string"},
                    "file": {"type": "string"},
                    "line": {"type": "integer"},
                    "profiles": {"type": "integer"},
                    "self_samples": {"type": "integer"},
                    "total_samples": {"type": "integer"},
                    "self_share": {"type": "number"},
                    "total_share": {"type": "number"},
                },
            },
        },
    },
}
_QUERY = {
    "type": "object",
    "properties": {
        "fingerprint": {"type": "string"},
        "database": {"type": "string"},
        "fingerprint_kind": {"type": "string", "enum": ["parsed", "regex"]},
        "fingerprint_version": {"type": "string"},
        "display_sql": {"type": "string"},
        "sample_sql": {"type": "string"},
        "calls": {"type": "integer"},
        "total_ms": {"type": "number"},
        "mean_ms": {"type": "number"},
        "min_ms": {"type": "number"},
        "max_ms": {"type": "number"},
        "p50_ms": {"type": "number", "nullable": True},
        "p95_ms": {"type": "number", "nullable": True},
        "p99_ms": {"type": "number", "nullable": True},
        "rows": {"type": "integer"},
        "last_seen": {"type": "number"},
    },
}


_WINDOW = {
    "type": "object",
    "required": [
        "fingerprint",
        "database",
        "fingerprint_version",
        "start",
        "step_s",
        "calls",
        "total_ms",
        "mean_ms",
        "max_ms",
        "p95_ms",
    ],
    "properties": {
        "fingerprint": {"type": "string"},
        "database": {"type": "string"},
        "fingerprint_version": {"type": "string"},
        "start": {"type": "number", "description": "epoch seconds, a multiple of step_s"},
        "step_s": {"type": "number"},
        "calls": {"type": "integer"},
        "total_ms": {"type": "number"},
        "mean_ms": {"type": "number"},
        "min_ms": {"type": "number"},
        "max_ms": {"type": "number"},
        "rows": {"type": "integer"},
        "p50_ms": {"type": "number", "nullable": True},
        "p95_ms": {"type": "number", "nullable": True},
        "p99_ms": {"type": "number", "nullable": True},
    },
}
_SINCE = {
    "name": "since",
    "in": "query",
    "description": "epoch seconds; statistics from windows since then",
    "schema": {"type": "number", "minimum": 0, "maximum": 253402300799},
}


def _list(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": "OK",
        "content": {"application/json": {"schema": {"type": "array", "items": schema}}},
    }


DOCUMENT: dict[str, Any] = service_document(
    title="opsmesh query-analyzer",
    version="1",
    description="Slow-query statistics per fingerprint, findings and index advice. "
    "Read-only; no token. Errors are JSON with an `error` message.",
    paths={
        "/api/v1/queries": {
            "get": {
                "summary": "Top query fingerprints by total time",
                "parameters": [_LIMIT, _DATABASE, _SINCE],
                "responses": {"200": _list(_QUERY), "400": _ERROR},
            }
        },
        "/api/v1/queries/windows": {
            "get": {
                "summary": "Fingerprints' statistics over time (what a trend is drawn from)",
                "description": "Per fingerprint, database and version: its windows summed"
                " into buckets of `step` seconds (aligned to multiples of `step` since the"
                " epoch; a window counts in the bucket its start falls in), the last"
                " `buckets` buckets up to its newest window, oldest first. p50/p95/p99 come"
                " from the bucket's merged sketches. A bucket without calls is absent.",
                "parameters": [
                    {
                        "name": "fingerprint",
                        "in": "query",
                        "required": True,
                        "description": "repeat it for several (at most 100)",
                        "style": "form",
                        "explode": True,
                        "schema": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 100,
                            "items": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                        },
                    },
                    {
                        "name": "step",
                        "in": "query",
                        "description": "bucket length in seconds",
                        "schema": {
                            "type": "integer",
                            "minimum": 10,
                            "maximum": 604800,
                            "default": 3600,
                        },
                    },
                    {
                        "name": "buckets",
                        "in": "query",
                        "description": "how many buckets back from each series' newest",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 24},
                    },
                    _DATABASE,
                    _SINCE,
                ],
                "responses": {"200": _list(_WINDOW), "400": _ERROR},
            }
        },
        "/api/v1/queries/{fingerprint}": {
            "get": {
                "summary": "One fingerprint: statistics per database, sample, plans, findings",
                "parameters": [
                    {
                        "name": "fingerprint",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "fingerprint": {"type": "string"},
                                        "stats": {"type": "array", "items": _QUERY},
                                        "plans": {"type": "array", "items": {"type": "object"}},
                                        "findings": {
                                            "type": "array",
                                            "items": {"type": "object"},
                                        },
                                        "recommendations": {
                                            "type": "array",
                                            "items": {"type": "object"},
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        "/api/v1/findings": {
            "get": {
                "summary": "N+1, p95 regression and plan-problem findings, newest first",
                "parameters": [
                    _LIMIT,
                    _DATABASE,
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["n_plus_one", "p95_regression", "plan_problem"],
                        },
                    },
                ],
                "responses": {"200": _list({"type": "object"}), "400": _ERROR},
            }
        },
        "/api/v1/recommendations": {
            "get": {
                "summary": "Index advice ranked by estimated time saved",
                "parameters": [
                    _LIMIT,
                    _DATABASE,
                    {"name": "actionable", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {"200": _list({"type": "object"}), "400": _ERROR},
            }
        },
        "/api/v1/profiles": {
            "get": {
                "summary": "Profiled routes by total profiled time, each with its top functions"
                " by self samples (request profiles from the producer SDK)",
                "parameters": [
                    _LIMIT,
                    {
                        "name": "service",
                        "in": "query",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                    {
                        "name": "functions",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                    },
                ],
                "responses": {"200": _list(_ROUTE_PROFILE), "400": _ERROR},
            }
        },
    },
)
