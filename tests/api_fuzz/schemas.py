"""The documents and schemathesis configuration shared by the fuzz tests and
``bench/api_fuzz.py``.

Every built-in check runs everywhere (``--checks all``). Where a check cannot hold for a
reason that lies in the document and not in the service, it is turned off for that one
operation, with the reason beside it (``EXCEPTIONS``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import schemathesis
import yaml

from alert_engine.api import MAX_BODY as ALERT_ENGINE_MAX_BODY
from alert_engine.api.openapi import openapi_document as alert_engine_document
from health_aggregator.api.openapi import openapi_document as health_document
from metrics_ingest.api.openapi import openapi_document as metrics_document
from metrics_ingest.rollup.ingest import IngestLimits
from notifier.api.openapi import DOCUMENT as NOTIFIER_DOCUMENT
from query_analyzer.api.openapi import DOCUMENT as QUERY_DOCUMENT

ALERTMANAGER_SPEC = Path(__file__).parents[1] / "fixtures" / "openapi" / "alertmanager-v2.yaml"

# The services' documents with their default settings, which the fuzz mesh runs with
# (``test_served_documents_are_the_fuzzed_ones`` checks that they are the ones served).
DOCUMENTS: dict[str, dict[str, Any]] = {
    "metrics-ingest": metrics_document(IngestLimits(), 8 * 1024 * 1024),
    "alert-engine": alert_engine_document(),
    "notifier": NOTIFIER_DOCUMENT,
    "query-analyzer": QUERY_DOCUMENT,
    "health-aggregator": health_document(history_limit=100),
}


@schemathesis.serializer("application/x-protobuf")
def _protobuf_bytes(ctx: Any, value: Any) -> bytes:
    """Remote write's body (``format: binary``), sent as generated."""
    return value if isinstance(value, bytes) else str(value).encode()


_WRITES = (("/alerts", "post"), ("/silences", "post"), ("/silence/{silenceID}", "delete"))
# The status shows the configuration (secrets masked): a read token unless
# ALERT_ENGINE_PUBLIC_STATUS opens it.
_GUARDED = (*_WRITES, ("/status", "get"))


def alertmanager_document() -> dict[str, Any]:
    """Alertmanager's v2 specification plus what the engine adds on purpose: writes and
    the status need a bearer token (Alertmanager itself has no authentication), so they
    declare it and its 401/403 answers, and schemathesis checks that they enforce it; and
    a body beyond the engine's limit is refused with 413."""
    spec: dict[str, Any] = yaml.safe_load(ALERTMANAGER_SPEC.read_text())
    spec = copy.deepcopy(spec)
    spec["securityDefinitions"] = {
        "bearer": {"type": "apiKey", "in": "header", "name": "Authorization"}
    }
    for path, method in _GUARDED:
        operation = spec["paths"][path][method]
        operation["security"] = [{"bearer": []}]
        operation["responses"]["401"] = {
            "description": "missing or unknown bearer token",
            "schema": {"type": "string"},
        }
        operation["responses"]["403"] = {
            "description": "the token lacks the scope",
            "schema": {"type": "string"},
        }
    for path, method in _WRITES:
        operation = spec["paths"][path][method]
        if any(parameter.get("in") == "body" for parameter in operation.get("parameters", ())):
            operation["responses"]["413"] = {
                "description": f"the body is larger than {ALERT_ENGINE_MAX_BODY} bytes",
                "schema": {"type": "string"},
            }
    return spec


Operation = tuple[str, str]  # (METHOD, path)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Alertmanager's compatibility endpoints, documented by its own specification.
ALERTMANAGER_BASE = "/api/v2"


def operations(service: str) -> dict[Operation, dict[str, Any]]:
    """Every documented operation of ``service`` by (METHOD, full path); the alert-engine's
    include Alertmanager's under its base path."""
    found = _operations(DOCUMENTS[service])
    if service == "alert-engine":
        found |= _operations(alertmanager_document(), ALERTMANAGER_BASE)
    return found


def _operations(document: dict[str, Any], base: str = "") -> dict[Operation, dict[str, Any]]:
    return {
        (method.upper(), base + path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method.upper() in (*WRITE_METHODS, "GET")
    }


def write_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(service, METHOD, path, operation) of every documented write of every service."""
    return [
        (service, method, path, operation)
        for service in DOCUMENTS
        for (method, path), operation in operations(service).items()
        if method in WRITE_METHODS
    ]


def takes_a_body(operation: dict[str, Any]) -> bool:
    # OpenAPI 3 declares a requestBody; Swagger 2 (Alertmanager's) a parameter "in: body".
    return "requestBody" in operation or any(
        parameter.get("in") == "body" for parameter in operation.get("parameters", ())
    )


# (operation selector, checks turned off, why)
EXCEPTIONS: list[tuple[dict[str, Any], list[str], str]] = [
    (
        {"include-operation-id": ["postAlerts", "deleteSilence"]},
        ["content_type_conformance"],
        "Alertmanager's specification lists application/json for every answer, but "
        "Alertmanager (go-swagger) sends these bodiless 200s without a Content-Type; so "
        "does the engine, as its clients expect nothing else.",
    ),
    (
        {"include-operation-id": "postAlerts"},
        ["positive_data_acceptance"],
        "Alertmanager's specification allows any label set, but Alertmanager refuses "
        "(400) alerts without labels, with label names outside [a-zA-Z_][a-zA-Z0-9_]*, with "
        "empty values or with endsAt before startsAt (api/v2 alert.Validate); so does "
        "the engine.",
    ),
    (
        {"include-operation-id": "postSilences"},
        ["positive_data_acceptance"],
        "Alertmanager refuses (400) schema-valid silences that end before they start or "
        "in the past, whose matchers all match the empty string, with invalid label "
        "names or regular expressions (silence.Validate); so does the engine.",
    ),
    (
        {"include-path": "/api/v1/silences", "include-method": "POST"},
        ["positive_data_acceptance"],
        "the same silence rules as Alertmanager's (see postSilences), which a JSON "
        "schema cannot state.",
    ),
    (
        {"include-path": "/api/v1/rules", "include-method": "POST"},
        ["positive_data_acceptance"],
        "a rule file's meaning (known kinds, durations, templates that compile) is "
        "checked by the rule parser and answered 400 with the located error.",
    ),
    (
        {"include-path": "/api/v1/explain", "include-method": "GET"},
        ["positive_data_acceptance"],
        'labels is a label-set expression ({a="b",c="d"}) whose grammar is not a '
        "JSON schema; a wrong one is a 400 naming the error.",
    ),
    (
        {"include-path": "/api/v1/metrics", "include-method": "POST"},
        ["positive_data_acceptance"],
        "a sample's sampled_at must lie within the accepted window around the receive "
        "time and a histogram's buckets must increase; a batch whose every sample breaks "
        "such a rule is a 400 listing each sample's reason.",
    ),
    (
        {"include-path": "/api/v1/write", "include-method": "POST"},
        ["positive_data_acceptance"],
        "the body is a snappy-compressed protobuf WriteRequest, which a JSON schema cannot "
        "state (format: binary): generated bytes are not snappy and are a 400 naming it.",
    ),
    (
        {"include-path": "/api/v1/series", "include-method": "GET"},
        ["positive_data_acceptance"],
        "start, end and step are checked against each other and the configured window "
        "sizes (end after start, step a multiple of a window, at most 11,000 points); "
        "each refusal is a 400 naming the parameter.",
    ),
]


# (operation selector, check, statuses it takes as expected, why)
STATUSES: list[tuple[dict[str, Any], str, list[str], str]] = [
    (
        {"include-path-regex": "^/health/"},
        "not_a_server_error",
        ["2xx", "3xx", "4xx", "503"],
        "health endpoints answer 503 when what they report on fails (a probe that "
        "reports fail, Kubernetes and draft-inadarei semantics), as their documents state; "
        "any other 5xx is still a failure.",
    ),
    (
        {"include-path": "/api/v1/metrics", "include-method": "POST"},
        "negative_data_rejection",
        ["202", "400", "401", "413", "415"],
        "each sample is checked on its own: a batch with invalid samples next to valid "
        "ones is answered 202 with every invalid one listed by index and reason (partial "
        "success, as OTLP does), and only a batch with none valid is a 400; more samples "
        "than maxItems is a 413 (Content Too Large), like a body over the byte limit.",
    ),
]


def fuzz_config() -> schemathesis.Config:
    operations: list[dict[str, Any]] = [
        {**selector, "checks": {name: {"enabled": False} for name in checks}}
        for selector, checks, _ in EXCEPTIONS
    ]
    operations += [
        {**selector, "checks": {check: {"expected-statuses": statuses}}}
        for selector, check, statuses, _ in STATUSES
    ]
    return schemathesis.Config.from_dict({"operations": operations})


def schemas(config: schemathesis.Config | None = None) -> dict[str, Any]:
    """One schemathesis schema per document, keyed by a name the tests use."""
    config = config or fuzz_config()
    out = {
        name: schemathesis.openapi.from_dict(document, config=config)
        for name, document in DOCUMENTS.items()
    }
    out["alertmanager-v2"] = schemathesis.openapi.from_dict(alertmanager_document(), config=config)
    return out
