"""Event schemas: JSON round trips, decode-time limits, and the exported JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from opsmesh.events import (
    ALL_EVENTS,
    Alert,
    AlertsRouted,
    AlertState,
    AlertStateChanged,
    AlertStatus,
    Bucket,
    CdnPurgeRequested,
    CdnPurgeScope,
    DeliveryOutcome,
    Event,
    HealthReported,
    HealthStatus,
    MetricKind,
    MetricSampled,
    NotificationDelivered,
    NotificationRequested,
    NotifyReason,
    ProfiledFunction,
    ProfileRecorded,
    RoutedAlert,
    SignalKind,
    SignalObserved,
    SignalSource,
    SlowQueryObserved,
)
from opsmesh.events.schema import export, json_schema, schema_file_name
from opsmesh.kafka.codec import decode, encode

T0 = 1_700_000_000.0

SAMPLES: dict[type[Event], Event] = {
    MetricSampled: MetricSampled(
        name="http_request_duration_seconds",
        kind=MetricKind.HISTOGRAM,
        value=12.5,
        labels={"service": "api", "route": "/users"},
        sampled_at=T0,
        buckets=[Bucket(0.1, 3), Bucket(1.0, 9), Bucket(5.0, 10)],  # +Inf is `count`
        count=10,
    ),
    SlowQueryObserved: SlowQueryObserved(
        sql="SELECT * FROM users WHERE id = 1",
        duration_ms=812.5,
        rows=1,
        database="app",
        application="api",
        request_id="req-1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        started_at=T0,
        plan={"Plan": {"Node Type": "Seq Scan"}},
    ),
    ProfileRecorded: ProfileRecorded(
        service="api",
        instance="i-1",
        route="/orders/{id}",
        method="GET",
        status=200,
        reason="slow",
        duration_ms=1250.0,
        interval_ms=10.0,
        samples=120,
        functions=[
            ProfiledFunction(
                function="OrderView.get",
                file="shop/views.py",
                line=12,
                self_samples=3,
                total_samples=118,
            )
        ],
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        started_at=T0,
    ),
    HealthReported: HealthReported(
        service="api",
        instance="i-1",
        check="db",
        status=HealthStatus.WARN,
        observed_value=0.93,
        output="pool 93% used",
        critical=False,
        ttl_s=15,
        reported_at=T0,
    ),
    SignalObserved: SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name="cpu",
        subject='cpu{host="a"}',
        labels={"host": "a"},
        value=0.97,
        stats={"max": 0.99, "count": 6},
        window_start=T0,
        window_end=T0 + 60,
        observed_at=T0 + 61,
    ),
    AlertStateChanged: AlertStateChanged(
        fingerprint="0123456789abcdef",
        rule="CpuHot",
        previous=AlertState.PENDING,
        state=AlertState.FIRING,
        labels={"alertname": "CpuHot", "host": "a"},
        annotations={"summary": "cpu at 97%"},
        value=0.97,
        starts_at=T0,
        changed_at=T0 + 60,
    ),
    AlertsRouted: AlertsRouted(
        alerts=[
            RoutedAlert(
                route_id="0.1",
                group_key='{}/{team="db"}:{alertname="CpuHot"}',
                fingerprint="0123456789abcdef",
                labels={"alertname": "CpuHot", "team": "db"},
                annotations={"summary": "cpu at 97%"},
                starts_at=T0,
                ends_at=T0 + 300,
                updated_at=T0 + 1,
                timeout=True,
                previous=AlertState.INACTIVE,
                state=AlertState.FIRING,
            )
        ]
    ),
    NotificationRequested: NotificationRequested(
        idempotency_key="k-1",
        receiver="team",
        group_key='{}:{alertname="CpuHot"}',
        status=AlertStatus.FIRING,
        reason=NotifyReason.FIRST_NOTIFICATION,
        group_labels={"alertname": "CpuHot"},
        alerts=[
            Alert(
                fingerprint="0123456789abcdef",
                status=AlertStatus.FIRING,
                labels={"alertname": "CpuHot"},
                starts_at=T0,
            )
        ],
        requested_at=T0 + 90,
    ),
    NotificationDelivered: NotificationDelivered(
        idempotency_key="k-1",
        receiver="team",
        channel="webhook",
        outcome=DeliveryOutcome.FAILED,
        attempts=3,
        error="server_error: HTTP 503",
        status_code=503,
        finished_at=T0 + 95,
        latency_ms=5000.0,
    ),
    CdnPurgeRequested: CdnPurgeRequested(
        id="deploy-shop-1.4.2",
        scope=CdnPurgeScope.PREFIX,
        values=["https://cdn.example.com/static/"],
        providers=["cloudflare", "fastly"],
        source="deploy",
        reason="release 1.4.2",
        requested_at=T0,
    ),
}


def as_json(event: Event) -> dict[str, Any]:
    return json.loads(encode(event))


def test_every_event_has_a_sample() -> None:
    assert set(SAMPLES) == set(ALL_EVENTS)


def test_event_types_and_versions_are_distinct() -> None:
    types = [e.EVENT_TYPE for e in ALL_EVENTS]
    assert len(set(types)) == len(types)
    assert all(t.startswith("dev.opsmesh.") for t in types)
    assert all(e.SCHEMA_VERSION >= 1 for e in ALL_EVENTS)


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
def test_round_trips_through_json(event_type: type[Event]) -> None:
    event = SAMPLES[event_type]
    data = encode(event)
    assert decode(event_type, data) == event
    assert msgspec.json.decode(data, type=event_type) == event
    assert as_json(event)["schema_version"] == 1


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
def test_defaults_are_written_out(event_type: type[Event]) -> None:
    # omit_defaults=False: consumers in other languages see every field.
    fields = set(as_json(SAMPLES[event_type]))
    assert fields == set(event_type.__struct_fields__)


def reject(event_type: type[Event], doc: dict[str, Any], match: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=match):
        decode(event_type, json.dumps(doc).encode())


def metric(**changes: Any) -> dict[str, Any]:
    doc = as_json(SAMPLES[MetricSampled])
    doc.update(changes)
    return doc


def test_metric_name_with_a_space_is_rejected() -> None:
    reject(MetricSampled, metric(name="http requests"), r"\$\.name")


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a.b", "x" * 201])
def test_bad_metric_names_are_rejected(name: str) -> None:
    reject(MetricSampled, metric(name=name), r"\$\.name")


@pytest.mark.parametrize("name", ["a", "_x", "ns:sub_system:rate5m", "A9"])
def test_good_metric_names_are_accepted(name: str) -> None:
    assert decode(MetricSampled, json.dumps(metric(name=name)).encode()).name == name


def test_at_most_64_labels() -> None:
    ok = {f"l{i}": "v" for i in range(64)}
    assert len(decode(MetricSampled, json.dumps(metric(labels=ok)).encode()).labels) == 64
    reject(MetricSampled, metric(labels={**ok, "l64": "v"}), r"\$\.labels")


@pytest.mark.parametrize("label", ["has space", "9lives", "a-b", "", "x" * 101])
def test_bad_label_names_are_rejected(label: str) -> None:
    reject(MetricSampled, metric(labels={label: "v"}), r"\$\.labels")


def test_label_value_length_is_bounded() -> None:
    assert decode(MetricSampled, json.dumps(metric(labels={"a": "v" * 1024})).encode())
    reject(MetricSampled, metric(labels={"a": "v" * 1025}), r"\$\.labels")


def test_negative_time_is_rejected() -> None:
    reject(MetricSampled, metric(sampled_at=-1), r"\$\.sampled_at")


def test_unknown_enum_is_rejected() -> None:
    reject(MetricSampled, metric(kind="summary"), r"\$\.kind")


def test_health_ttl_bounds() -> None:
    doc = as_json(SAMPLES[HealthReported])
    reject(HealthReported, {**doc, "ttl_s": 0}, r"\$\.ttl_s")
    reject(HealthReported, {**doc, "ttl_s": 86_401}, r"\$\.ttl_s")


def test_empty_sql_and_too_many_alerts_are_rejected() -> None:
    reject(SlowQueryObserved, {**as_json(SAMPLES[SlowQueryObserved]), "sql": ""}, r"\$\.sql")
    request = as_json(SAMPLES[NotificationRequested])
    request["alerts"] = request["alerts"] * 1001
    reject(NotificationRequested, request, r"\$\.alerts")


def test_missing_required_field_is_rejected() -> None:
    doc = metric()
    del doc["sampled_at"]
    reject(MetricSampled, doc, "sampled_at")


# -- JSON Schema ---------------------------------------------------------------------------


def validator(event_type: type[Event]) -> jsonschema.Draft202012Validator:
    schema = json_schema(event_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
def test_schema_metadata(event_type: type[Event]) -> None:
    schema = json_schema(event_type)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == event_type.__name__
    assert schema["x-cloudevents-type"] == event_type.EVENT_TYPE
    assert schema["x-schema-version"] == event_type.SCHEMA_VERSION
    assert schema["$id"].endswith("/" + schema_file_name(event_type))


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
def test_schema_accepts_the_sample(event_type: type[Event]) -> None:
    validator(event_type).validate(as_json(SAMPLES[event_type]))


@pytest.mark.parametrize("event_type", ALL_EVENTS, ids=lambda t: t.__name__)
def test_schema_rejects_a_missing_required_field(event_type: type[Event]) -> None:
    schema = json_schema(event_type)
    (definition,) = [d for d in schema["$defs"].values() if d.get("title") == event_type.__name__]
    assert definition["required"]
    for field in definition["required"]:
        doc = as_json(SAMPLES[event_type])
        del doc[field]
        assert not validator(event_type).is_valid(doc), field


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"name": "has space"}, "name"),
        ({"labels": {f"l{i}": "v" for i in range(65)}}, "labels"),
        ({"labels": {"bad-name": "v"}}, "labels"),
        ({"kind": "summary"}, "kind"),
        ({"sampled_at": -5}, "sampled_at"),
        ({"value": "high"}, "value"),
    ],
)
def test_schema_rejects_invalid_metric(change: dict[str, Any], path: str) -> None:
    doc = copy.deepcopy(as_json(SAMPLES[MetricSampled]))
    doc.update(change)
    errors = list(validator(MetricSampled).iter_errors(doc))
    assert errors
    assert any(path in e.absolute_path for e in errors)


def test_schema_and_decoder_agree_on_the_samples_and_a_bad_one() -> None:
    bad = metric(name="has space")
    assert not validator(MetricSampled).is_valid(bad)
    with pytest.raises(msgspec.ValidationError):
        decode(MetricSampled, json.dumps(bad).encode())


def test_export_writes_one_valid_file_per_event(tmp_path: Path) -> None:
    written = export(tmp_path / "schemas")
    assert sorted(p.name for p in written) == sorted(schema_file_name(e) for e in ALL_EVENTS)
    for event_type in ALL_EVENTS:
        on_disk = json.loads((tmp_path / "schemas" / schema_file_name(event_type)).read_text())
        assert on_disk == json_schema(event_type)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"scope": "everything"}, "scope"),
        ({"providers": ["Has Space"]}, "providers"),
        ({"id": ""}, "id"),
        ({"id": "with space"}, "id"),
        ({"values": [""]}, "values"),
        ({"values": ["u"] * 1001}, "values"),
    ],
)
def test_bad_purge_requests_are_rejected(change: dict[str, Any], path: str) -> None:
    doc = {**as_json(SAMPLES[CdnPurgeRequested]), **change}
    reject(CdnPurgeRequested, doc, rf"\$\.{path}")
    assert not validator(CdnPurgeRequested).is_valid(doc)
