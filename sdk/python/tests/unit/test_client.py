"""The client's promises to the application: settings as documented, a bounded buffer
that drops and counts instead of blocking, metrics as cumulative samples, a flush that
sends everything."""

from __future__ import annotations

import threading
import time

import pytest

from opsmesh_client import trace
from opsmesh_client.client import Client
from opsmesh_client.metrics import MetricError, Registry
from opsmesh_client.outbox import DropReason, Outbox
from opsmesh_client.settings import Settings, SettingsError, load
from opsmesh_client.testing import MemoryTransports
from opsmesh_client.wire import Kind, Record, metric_sample

NOW = 1_760_000_000.0


def client(made: MemoryTransports, **settings: object) -> Client:
    return Client(
        load({}, service="shop", kafka="unused:1", instance="i-1", **settings),
        transport=made,
        clock=lambda: NOW,
        start=False,
    )


def test_settings_come_from_arguments_then_the_environment() -> None:
    env = {
        "OPSMESH_SERVICE": "from-env",
        "OPSMESH_KAFKA_BOOTSTRAP": "k:9092",
        "OPSMESH_BUFFER_SIZE": "7",
        "OPSMESH_ENABLED": "false",
        "OPSMESH_QUERY_MIN_MS": "2.5",
    }
    loaded = load(env, service="given")
    assert loaded.service == "given"
    assert loaded.kafka == "k:9092"
    assert loaded.buffer_size == 7
    assert loaded.enabled is False
    assert loaded.query_min_ms == 2.5


@pytest.mark.parametrize(
    ("env", "given", "problem"),
    [
        ({}, {"kafka": "k:1"}, "service is required"),
        ({}, {"service": "s"}, "no transport"),
        ({}, {"service": "s", "http": "http://m"}, "http_token"),
        ({"OPSMESH_BUFFER_SIZE": "many"}, {"service": "s", "kafka": "k"}, "OPSMESH_BUFFER_SIZE"),
        ({}, {"service": "s", "kafka": "k", "buffer_size": 0}, "buffer_size"),
        ({}, {"service": "s", "kafka": "k", "colour": "red"}, "unknown settings"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_init(
    env: dict[str, str], given: dict[str, object], problem: str
) -> None:
    with pytest.raises(SettingsError, match=problem):
        load(env, **given)


def test_a_full_outbox_drops_and_counts_without_blocking() -> None:
    outbox: Outbox[Record] = Outbox(capacity=3)
    record = metric_sample("m", "gauge", 1, {}, NOW)
    accepted = [outbox.offer(record) for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    assert outbox.dropped() == {"buffer_full": 2}
    assert len(outbox.drain(10)) == 3
    outbox.close()
    assert outbox.offer(record) is False
    assert outbox.dropped() == {"buffer_full": 2, "closed": 1}


def test_sends_that_fail_are_counted_by_reason() -> None:
    made = MemoryTransports()
    shop = client(made)
    made.transport.failing = True
    shop.report_check("db", "pass")
    shop.report_check("cache", "warn")
    shop.flush()
    assert shop.stats()["dropped"] == {DropReason.SEND_FAILED.value: 2}
    assert made.transport.records == []


def test_metrics_are_sent_as_cumulative_samples_with_the_clients_labels() -> None:
    made = MemoryTransports()
    shop = client(made)
    orders = shop.metrics.counter("orders_total", ["channel"])
    orders.labels(channel="web").inc()
    orders.labels(channel="web").inc(2)
    latency = shop.metrics.histogram("work_seconds", buckets=(0.1, 1))
    for value in (0.05, 0.5, 5):
        latency.observe(value)
    shop.flush()
    orders.labels(channel="web").inc()
    shop.flush()
    samples = [r.body for r in made.transport.of(Kind.METRIC)]
    counts = [s["value"] for s in samples if s["name"] == "orders_total"]
    assert counts == [3.0, 4.0]  # cumulative, as the rollups compute increases
    work = next(s for s in samples if s["name"] == "work_seconds")
    assert work["buckets"] == [{"le": 0.1, "count": 1.0}, {"le": 1.0, "count": 2.0}]
    assert work["count"] == 3.0
    assert work["value"] == pytest.approx(5.55)
    assert work["labels"] == {"service": "shop", "instance": "i-1"}


def test_metric_misuse_is_an_error_at_the_call() -> None:
    registry = Registry()
    counter = registry.counter("c", ["a"])
    with pytest.raises(MetricError):
        counter.labels(b="x")
    with pytest.raises(MetricError):
        counter.labels(a="x").inc(-1)
    with pytest.raises(MetricError):
        registry.counter("c")
    with pytest.raises(MetricError):
        registry.gauge("bad-name")


def test_the_error_ratio_covers_the_requests_of_one_interval_only() -> None:
    made = MemoryTransports()
    shop = client(made)
    for status in (200, 200, 500, 200):
        shop.requests.observe("/a", "GET", status, 0.01)
    shop.flush()
    shop.flush()  # no requests since: no ratio (not a 0 % one)
    shop.requests.observe("/a", "GET", 200, 0.01)
    shop.flush()
    ratios = [
        r.body["value"]
        for r in made.transport.of(Kind.METRIC)
        if r.body["name"] == "http_error_ratio"
    ]
    assert ratios == [0.25, 0.0]


def test_queries_below_the_threshold_are_not_sent_and_parameters_never_are() -> None:
    made = MemoryTransports()
    shop = client(made, query_min_ms=5)
    token = trace.enter(trace.new_trace())
    try:
        shop.query("SELECT * FROM t WHERE id = %s", 0.001, started_at=NOW)
        shop.query("SELECT * FROM t WHERE id = %s", 0.010, started_at=NOW, rows=1)
    finally:
        trace.leave(token)
    shop.flush()
    (sent,) = made.transport.of(Kind.SLOW_QUERY)
    assert sent.body["sql"] == "SELECT * FROM t WHERE id = %s"
    assert sent.body["duration_ms"] == pytest.approx(10)
    assert sent.body["trace_id"] is not None


def test_the_background_thread_sends_without_a_flush_and_close_flushes() -> None:
    made = MemoryTransports()
    shop = Client(
        Settings(service="shop", kafka="unused:1", flush_interval_s=0.05, heartbeat_interval_s=60),
        transport=made,
    )
    try:
        shop.report_check("db", "pass")
        deadline = time.monotonic() + 5
        while not made.transport.of(Kind.HEALTH) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition, not synchronisation
        assert sorted(r.body["check"] for r in made.transport.of(Kind.HEALTH)) == [
            "db",
            "heartbeat",
        ]
        shop.report_check("cache", "pass")
    finally:
        shop.close()
    assert [r.body["check"] for r in made.transport.of(Kind.HEALTH)][-1] == "cache"
    assert not any(t.name == "opsmesh-client" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize(
    ("header", "valid"),
    [
        ("00-" + "a" * 32 + "-" + "b" * 16 + "-01", True),
        ("00-" + "0" * 32 + "-" + "b" * 16 + "-01", False),
        ("ff-" + "a" * 32 + "-" + "b" * 16 + "-01", False),
        ("00-" + "A" * 32 + "-" + "b" * 16 + "-01", False),
        ("00-" + "a" * 32 + "-" + "b" * 16 + "-01-extra", False),
        (None, False),
    ],
)
def test_a_request_continues_a_valid_traceparent_only(header: str | None, valid: bool) -> None:
    context = trace.request_context(header)
    assert (context.trace_id == "a" * 32) is valid
    assert context.span_id != "b" * 16


def test_a_disabled_client_buffers_and_sends_nothing() -> None:
    made = MemoryTransports()
    shop = Client(
        load({"OPSMESH_ENABLED": "0"}, service="shop"),
        transport=made,
        clock=lambda: NOW,
        start=False,
    )
    shop.query("SELECT 1", 0.5, started_at=NOW)
    shop.report_check("db", "fail")
    shop.requests.observe("/", "GET", 500, 0.1)
    assert shop.flush()
    assert shop.stats() == {"accepted": 0, "dropped": {}, "buffered": 0}
    assert made.transport.records == []


def test_the_prometheus_bridge_sends_each_family_as_its_kind() -> None:
    import prometheus_client  # noqa: PLC0415 - the optional extra

    from opsmesh_client.prometheus import bridge  # noqa: PLC0415

    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("jobs", "j", ["queue"], registry=registry).labels("mail").inc(2)
    prometheus_client.Histogram("work_seconds", "w", buckets=(1, 2), registry=registry).observe(1.5)
    made = MemoryTransports()
    shop = client(made)
    bridge(shop, registry)
    shop.flush()
    sent = {r.body["name"]: r.body for r in made.transport.of(Kind.METRIC)}
    assert sent["jobs_total"]["kind"] == "counter"
    assert sent["jobs_total"]["value"] == 2
    assert sent["jobs_total"]["labels"] == {"service": "shop", "instance": "i-1", "queue": "mail"}
    work = sent["work_seconds"]
    assert work["kind"] == "histogram"
    assert work["buckets"] == [{"le": 1.0, "count": 0.0}, {"le": 2.0, "count": 1.0}]
    assert (work["count"], work["value"]) == (1.0, 1.5)
    assert "jobs_created" not in sent


def test_a_query_whose_event_cannot_be_made_is_counted_and_the_rest_still_go() -> None:
    made = MemoryTransports()
    shop = client(made)
    shop.query(b"SELECT 1", 0.001, started_at=NOW)  # type: ignore[arg-type]  # not text
    shop.query("SELECT 2", 0.001, started_at=NOW)
    shop.flush()
    assert [r.body["sql"] for r in made.transport.of(Kind.SLOW_QUERY)] == ["SELECT 2"]
    assert shop.stats()["dropped"] == {"rejected": 1}
