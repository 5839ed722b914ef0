"""Every write that takes a body refuses one past the service's limit with the 413 its
document declares (``tests/contract/test_openapi_coverage.py`` checks the declaration),
before reading it whole, whatever the endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_fuzz.conftest import METRICS_TOKEN, WRITE_TOKEN, FuzzMesh
from tests.api_fuzz.hostile import Probe, refused
from tests.api_fuzz.schemas import takes_a_body, write_operations

pytestmark = pytest.mark.integration

# Every service's body limit with the settings the fuzz mesh runs (8 MiB each).
LIMIT = 8 * 1024 * 1024
TOKENS = {"alert-engine": WRITE_TOKEN, "metrics-ingest": METRICS_TOKEN}
BODIES = [
    (service, method, path, operation)
    for service, method, path, operation in write_operations()
    if takes_a_body(operation)
]


def _content_type(operation: dict[str, Any]) -> str:
    if "requestBody" in operation:
        return next(iter(operation["requestBody"]["content"]))
    return "application/json"  # Swagger 2's default, Alertmanager's


def _required_headers(operation: dict[str, Any]) -> dict[str, str]:
    """The headers the document requires (remote write's Content-Encoding), so the body's
    size is what is refused and not their absence."""
    return {
        parameter["name"]: parameter["schema"]["enum"][0]
        for parameter in operation.get("parameters", ())
        if parameter.get("in") == "header" and parameter.get("required")
    }


def test_every_service_that_takes_a_body_has_a_token_here() -> None:
    assert {service for service, *_ in BODIES} == set(TOKENS)


@pytest.mark.parametrize(
    ("service", "method", "path", "operation"),
    BODIES,
    ids=[f"{service}:{method} {path}" for service, method, path, _ in BODIES],
)
async def test_a_body_past_the_limit_is_refused_with_413(
    fuzz_mesh: FuzzMesh, service: str, method: str, path: str, operation: dict[str, Any]
) -> None:
    probe = Probe(
        "oversized body",
        method,
        path,
        b" " * (LIMIT + 1),
        {
            "Authorization": f"Bearer {TOKENS[service]}",
            "Content-Type": _content_type(operation),
            **_required_headers(operation),
        },
        413,
    )
    assert await refused(fuzz_mesh.url(service), [probe]) == []
