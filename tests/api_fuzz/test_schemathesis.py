"""schemathesis against every OpenAPI document of every service, with and without a token.

Each operation of each document is one test (the documents are the services' own data,
so they are known when pytest collects); every built-in check runs (`--checks all`), and
every run must end with no server error and no response that breaks its document. A
separate test checks that each service serves at ``/api/v1/openapi.json`` the very
document fuzzed here. ``bench/api_fuzz.py`` runs the same with many more examples.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.api_fuzz.conftest import (
    FOREIGN_TOKEN,
    METRICS_TOKEN,
    READ_TOKEN,
    WRITE_TOKEN,
    FuzzMesh,
)
from tests.api_fuzz.schemas import DOCUMENTS, schemas

pytestmark = pytest.mark.integration

SCHEMAS = schemas()
metrics_ingest = SCHEMAS["metrics-ingest"]
alert_engine = SCHEMAS["alert-engine"]
alertmanager = SCHEMAS["alertmanager-v2"]
notifier = SCHEMAS["notifier"]
query_analyzer = SCHEMAS["query-analyzer"]
health_aggregator = SCHEMAS["health-aggregator"]

# A few examples per operation keep the whole run near a minute; bench/api_fuzz.py sets
# OPSMESH_FUZZ_EXAMPLES for a longer run of the same tests.
EXAMPLES = int(os.environ.get("OPSMESH_FUZZ_EXAMPLES", "10"))
FAST = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _tokens(token: str) -> Any:
    return pytest.mark.parametrize("token", [None, token], ids=["no-token", "token"])


@_tokens(METRICS_TOKEN)
@metrics_ingest.parametrize()
@FAST
def test_metrics_ingest(case: schemathesis.Case, fuzz_mesh: FuzzMesh, token: str | None) -> None:
    case.call_and_validate(base_url=fuzz_mesh.url("metrics-ingest"), headers=_bearer(token))


@_tokens(WRITE_TOKEN)
@alert_engine.parametrize()
@FAST
def test_alert_engine(case: schemathesis.Case, fuzz_mesh: FuzzMesh, token: str | None) -> None:
    case.call_and_validate(base_url=fuzz_mesh.url("alert-engine"), headers=_bearer(token))


@_tokens(WRITE_TOKEN)
@alertmanager.parametrize()
@FAST
def test_alert_engine_alertmanager_v2(
    case: schemathesis.Case, fuzz_mesh: FuzzMesh, token: str | None
) -> None:
    # Swagger 2.0's basePath (/api/v2/) is the caller's to add.
    base = f"{fuzz_mesh.url('alert-engine')}/api/v2"
    case.call_and_validate(base_url=base, headers=_bearer(token))


@_tokens(FOREIGN_TOKEN)
@notifier.parametrize()
@FAST
def test_notifier(case: schemathesis.Case, fuzz_mesh: FuzzMesh, token: str | None) -> None:
    case.call_and_validate(base_url=fuzz_mesh.url("notifier"), headers=_bearer(token))


@_tokens(FOREIGN_TOKEN)
@query_analyzer.parametrize()
@FAST
def test_query_analyzer(case: schemathesis.Case, fuzz_mesh: FuzzMesh, token: str | None) -> None:
    case.call_and_validate(base_url=fuzz_mesh.url("query-analyzer"), headers=_bearer(token))


@_tokens(FOREIGN_TOKEN)
@health_aggregator.parametrize()
@FAST
def test_health_aggregator(case: schemathesis.Case, fuzz_mesh: FuzzMesh, token: str | None) -> None:
    case.call_and_validate(base_url=fuzz_mesh.url("health-aggregator"), headers=_bearer(token))


@pytest.mark.parametrize(("service", "document"), list(DOCUMENTS.items()), ids=list(DOCUMENTS))
def test_served_documents_are_the_fuzzed_ones(
    fuzz_mesh: FuzzMesh, service: str, document: dict[str, Any]
) -> None:
    url = f"{fuzz_mesh.url(service)}/api/v1/openapi.json"
    with urllib.request.urlopen(url, timeout=5) as response:
        served = json.loads(response.read())
    assert served == json.loads(json.dumps(document))
    assert served["openapi"].startswith("3.0")
    assert {"/health/live", "/health/ready", "/metrics"} <= set(served["paths"])


def test_read_token_cannot_write(fuzz_mesh: FuzzMesh) -> None:
    """The write token above may do everything; a read token is refused every write."""
    request = urllib.request.Request(
        f"{fuzz_mesh.url('alert-engine')}/api/v2/alerts",
        data=b'[{"labels": {"alertname": "x"}}]',
        headers={**_bearer(READ_TOKEN), "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    refused.value.close()
    assert refused.value.code == 403
