"""Every operation a service serves is in its OpenAPI document, and every write says how it
fails.

The fuzz tests (``tests/api_fuzz``) check that each service keeps to its document; they
cannot see a route the document leaves out. Here each service's application is built as
``__main__`` builds it (nothing is started) and its router is compared with the document
schemathesis fuzzes: a route added without documenting it, or a write that does not
declare how it refuses, fails here. ``tests/api_fuzz/test_hostile_write_limits.py``
checks the declared 413s against the running services.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from tests.api_fuzz.schemas import Operation, operations, takes_a_body, write_operations

from alert_engine.app import build as build_alert_engine
from alert_engine.settings import AlertEngineSettings
from health_aggregator.app import build as build_health_aggregator
from health_aggregator.settings import HealthAggregatorSettings
from metrics_ingest.app import build as build_metrics_ingest
from metrics_ingest.settings import MetricsIngestSettings
from notifier.app import build as build_notifier
from notifier.settings import NotifierSettings
from query_analyzer.app import build as build_query_analyzer
from query_analyzer.settings import QueryAnalyzerSettings

BUILDERS: dict[str, Callable[[], web.Application]] = {
    "metrics-ingest": lambda: build_metrics_ingest(MetricsIngestSettings()),
    "health-aggregator": lambda: build_health_aggregator(HealthAggregatorSettings()),
    "notifier": lambda: build_notifier(NotifierSettings()),
    "query-analyzer": lambda: build_query_analyzer(QueryAnalyzerSettings()),
    "alert-engine": lambda: build_alert_engine(AlertEngineSettings()),
}
# A path parameter's name is the handler's business ({silence_id} is {silenceID}).
_PARAMETER = re.compile(r"\{[^}]*\}")
WRITES = write_operations()


def _normalized(found: set[Operation]) -> set[Operation]:
    return {(method, _PARAMETER.sub("{}", path.rstrip("/") or "/")) for method, path in found}


def served(app: web.Application) -> set[Operation]:
    # aiohttp adds HEAD beside every GET.
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


@pytest.mark.parametrize("service", sorted(BUILDERS))
def test_every_served_operation_is_documented(service: str) -> None:
    serving = _normalized(served(BUILDERS[service]()))
    documented = _normalized(set(operations(service)))
    assert sorted(serving - documented) == [], "served but not documented"
    assert sorted(documented - serving) == [], "documented but not served"


def test_the_services_that_take_writes_are_all_checked() -> None:
    # health-aggregator and query-analyzer take their events from Kafka, or over HTTP
    # through metrics-ingest's ingest endpoints: they serve reads only.
    assert {service for service, *_ in WRITES} == {"alert-engine", "metrics-ingest", "notifier"}


@pytest.mark.parametrize(
    ("service", "method", "path", "operation"),
    WRITES,
    ids=[f"{service}:{method} {path}" for service, method, path, _ in WRITES],
)
def test_every_write_declares_its_refusals(
    service: str, method: str, path: str, operation: dict[str, Any]
) -> None:
    """Every write is authenticated (401); one that takes a body says how a body is refused
    (400), and how one too large is (413: every input has a size limit)."""
    expected = {"401"} | ({"400", "413"} if takes_a_body(operation) else set())
    assert expected <= set(operation["responses"]), sorted(operation["responses"])
