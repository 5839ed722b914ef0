"""The seam between the producer SDK (``opsmesh_client``) and the services that read it.

The SDK does not import the mesh's schema library, so here what it really emits — a
client driven through requests, queries, metrics, the Prometheus bridge and health checks
— is held to what the services declare: each record validates against its event's JSON
Schema (built from ``opsmesh.events`` and as exported to ``docs/schemas``), decodes as the
event type, carries that type's CloudEvents headers and goes to its topic under the key the
topic declares; the request metrics are the catalogue's application metrics with their
labels; and the HTTP transport's bodies go to metrics-ingest's endpoints for their
event types and are accepted by its parsers.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import msgspec
import prometheus_client
import pytest

from metrics_ingest.api.events import ENDPOINTS
from metrics_ingest.rollup.events_body import parse_events
from metrics_ingest.rollup.ingest import IngestLimits, parse_batch
from opsmesh import catalogue, topics
from opsmesh.events import (
    ALL_EVENTS,
    HealthReported,
    MetricSampled,
    ProfileRecorded,
    SlowQueryObserved,
)
from opsmesh.events.base import Event
from opsmesh.events.schema import json_schema, schema_file_name
from opsmesh.kafka.headers import cloudevent_headers
from opsmesh.labels import series_id
from opsmesh_client import trace
from opsmesh_client.cache import Cache, Namespace
from opsmesh_client.cache import observed as cache_metrics
from opsmesh_client.client import Client
from opsmesh_client.prometheus import bridge
from opsmesh_client.settings import load
from opsmesh_client.testing import MemoryTransports, compute_for
from opsmesh_client.transport import http_body
from opsmesh_client.wire import DEFAULT_TOPICS, Kind, Record

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_760_000_000.0
BY_TYPE: dict[str, type[Event]] = {e.EVENT_TYPE: e for e in ALL_EVENTS}
TOPIC_OF: dict[type[Event], topics.Topic] = {
    MetricSampled: topics.METRICS,
    SlowQueryObserved: topics.SLOW_QUERIES,
    HealthReported: topics.HEALTH,
    ProfileRecorded: topics.PROFILES,
}


@pytest.fixture(scope="module")
def emitted() -> list[Record]:
    """Everything a client sends for a little real use."""
    made = MemoryTransports()
    client = Client(
        load(
            {},
            service="shop",
            kafka="unused:9092",
            environment="demo",
            instance="web-1",
            profile_slow_ms=100,
            profile_interval_ms=2,
            profile_memory=True,  # not started (start=False): tracemalloc reads 0 bytes
        ),
        transport=made,
        clock=lambda: NOW,
        start=False,
    )
    client.requests.observe("/orders/{id}", "GET", 200, 0.012)
    client.requests.observe("/orders/{id}", "GET", 503, 1.5)
    client.requests.observe(None, "POST", 404, 0.001)
    client.metrics.counter("orders_placed_total", ["channel"]).labels(channel="web").inc(3)
    client.metrics.gauge("cart_size").set(2.5)
    client.metrics.histogram("basket_value", buckets=(10, 100)).observe(42)
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("legacy_jobs", "jobs", ["queue"], registry=registry).labels(
        "mail"
    ).inc()
    prometheus_client.Histogram("legacy_seconds", "t", registry=registry).observe(0.3)
    prometheus_client.Summary("legacy_summary", "s", registry=registry).observe(1)
    prometheus_client.Gauge("legacy_temperature", "g", registry=registry).set(-4)
    bridge(client, registry)
    token = trace.enter(trace.request_context("00-" + "a" * 32 + "-" + "b" * 16 + "-01"))
    try:
        client.query("SELECT * FROM orders WHERE id = %s", 0.004, started_at=NOW, rows=1)
    finally:
        trace.leave(token)
    client.query("SELECT 1", 0.001, started_at=NOW, database="shop")
    _profiled_request(client)
    client.report_check("database", "fail", output="connection refused", observed_value=1.5)
    client._heartbeat()
    cache = _cache_in_use(client)
    client.flush()
    cache.close()
    records = made.transport.records
    assert {r.kind for r in records} == set(Kind)
    return records


def _cache_in_use(client: Client) -> Cache:
    """A static namespace at the seed's 95 % target, answering 90 % of its lookups."""
    target = cache_metrics.STATIC_HIT_RATIO_TARGET
    cache = Cache(None, [Namespace("static", hit_ratio_target=target)], client=client)
    cache.set("logo.png", "<svg/>", namespace="static")
    for i in range(cache_metrics.MIN_LOOKUPS):
        cache.get("logo.png" if i % 10 else f"banner-{i}.png", namespace="static")
    return cache


def _profiled_request(client: Client) -> None:
    """A slow request profiled by pyinstrument while it worked for a few intervals."""
    opened = client.begin_profile()
    assert opened is not None
    compute_for(0.02)
    client.end_profile(
        opened, route="/orders/{id}", method="GET", status=200, duration_s=0.4, started_at=NOW
    )


def _schemas(event: type[Event]) -> list[dict[str, object]]:
    exported = json.loads((ROOT / "docs" / "schemas" / schema_file_name(event)).read_text())
    return [json_schema(event), exported]


def test_every_record_is_a_valid_event_of_its_declared_type(emitted: list[Record]) -> None:
    for record in emitted:
        event = BY_TYPE[_ce_type(record)]
        for schema in _schemas(event):
            jsonschema.validate(record.body, schema)
        decoded = msgspec.json.decode(record.value(), type=event)
        # Every field the event has, and nothing it would drop.
        assert msgspec.to_builtins(decoded) == record.body


def test_headers_are_the_meshs_cloudevents_attributes(emitted: list[Record]) -> None:
    mesh = [
        name for name, _ in cloudevent_headers(event_type="x", source="/s", time_s=NOW, trace=None)
    ]
    for record in emitted:
        names = [name for name, _ in record.headers("/shop/web-1")]
        assert names[: len(mesh)] == mesh
        if record.traceparent is not None:
            assert names[len(mesh) :] == ["traceparent"]


def test_records_go_to_their_events_topic_under_its_key(emitted: list[Record]) -> None:
    for record in emitted:
        event = BY_TYPE[_ce_type(record)]
        assert DEFAULT_TOPICS[record.kind] == TOPIC_OF[event].name
        if event is MetricSampled:
            assert record.key == series_id(record.body["name"], record.body["labels"])
        elif event is HealthReported:
            assert record.key == f"{record.body['service']}/{record.body['instance']}"
        elif event is ProfileRecorded:
            assert record.key == f"{record.body['service']}/{record.body['route']}"
        else:
            assert record.key == record.body["database"]


def _ce_type(record: Record) -> str:
    value = dict(record.headers("/s"))["ce_type"]
    assert isinstance(value, bytes)
    return value.decode()


def test_request_metrics_are_the_catalogues_application_metrics(emitted: list[Record]) -> None:
    samples = [r.body for r in emitted if r.kind is Kind.METRIC]
    for expected in catalogue.APPLICATION_METRICS:
        mine = [s for s in samples if s["name"] == expected.name]
        assert mine, f"the SDK sends no {expected.name}"
        for sample in mine:
            assert sample["kind"] == expected.metric_kind.value
            assert set(expected.labels) <= set(sample["labels"])
    ratio = next(s for s in samples if s["name"] == catalogue.HTTP_ERROR_RATIO.name)
    assert ratio["value"] == pytest.approx(1 / 3)
    assert ratio["labels"]["env"] == "demo"
    assert catalogue.CACHE_HIT_RATIO_MARGIN.name == cache_metrics.HIT_RATIO_MARGIN
    margin = next(s for s in samples if s["name"] == catalogue.CACHE_HIT_RATIO_MARGIN.name)
    assert margin["value"] == pytest.approx(0.9 - cache_metrics.STATIC_HIT_RATIO_TARGET)
    assert margin["labels"]["target"] == "0.95"


def test_a_query_in_a_request_hangs_under_the_requests_span(emitted: list[Record]) -> None:
    queries = [r for r in emitted if r.kind is Kind.SLOW_QUERY]
    traced = next(q for q in queries if q.body["trace_id"])
    assert traced.body["trace_id"] == "a" * 32
    assert traced.body["parent_span_id"] not in (None, "b" * 16)  # the request's own span
    assert traced.traceparent == f"00-{'a' * 32}-{traced.body['parent_span_id']}-01"
    untraced = next(q for q in queries if not q.body["trace_id"])
    assert untraced.traceparent is None


def test_the_http_transports_metric_bodies_are_accepted_by_metrics_ingest(
    emitted: list[Record],
) -> None:
    metrics = [r for r in emitted if r.kind is Kind.METRIC]
    _, body = http_body(Kind.METRIC, metrics)
    parsed = parse_batch(body, NOW, IngestLimits())
    assert parsed.rejected == []
    assert len(parsed.samples) == len(metrics)


def test_the_http_transports_event_bodies_go_to_metrics_ingests_endpoints(
    emitted: list[Record],
) -> None:
    endpoints = {path: event_type for path, event_type, _, _ in ENDPOINTS}
    for kind in (Kind.SLOW_QUERY, Kind.HEALTH, Kind.PROFILE):
        mine = [r for r in emitted if r.kind is kind]
        path, body = http_body(kind, mine)
        event_type = endpoints[path]
        assert event_type is BY_TYPE[_ce_type(mine[0])]
        parsed = parse_events(body, event_type, 1000)
        assert parsed.rejected == []
        assert len(parsed.events) == len(mine)
