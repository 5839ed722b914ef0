"""HTTP endpoints and the partitioned history over a real PostgreSQL (the producer is an
in-repo fake: what HTTP ingest publishes is checked as ``Outgoing`` records)."""

from __future__ import annotations

import datetime as dt
import gzip
import time
from collections.abc import AsyncIterator, Iterable

import msgspec
import psycopg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from metrics_ingest.api.gate import HttpIngest
from metrics_ingest.pipeline.history import RollupHistory
from metrics_ingest.rollup.closed import ClosedWindow
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.retention import RetentionPolicy, day_of
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import http_app
from opsmesh.clock import SystemClock
from opsmesh.db.pool import open_pool
from opsmesh.events.metrics import MetricKind, MetricSampled
from opsmesh.kafka.producer import Outgoing
from opsmesh.labels import series_id
from opsmesh.topics import METRICS
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration
TOKEN = "s3cret-token"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def publish_batched(self, items: Iterable[Outgoing]) -> None:
        self.sent.extend(items)


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(infra.pg_dsn, name="tests-metrics-ingest")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def api(pool: AsyncConnectionPool) -> AsyncIterator[tuple[TestClient, FakeProducer, Rollups]]:
    producer = FakeProducer()
    rollups = Rollups(WindowConfig((10.0, 60.0)))
    http = HttpIngest(
        token=TOKEN,
        limits=IngestLimits(max_samples=50),
        window_sizes=(10.0, 60.0),
        rollups=rollups,
        clock=SystemClock(),
        registry=CollectorRegistry(),
        producer=producer,
        pool=pool,
        max_body_bytes=64 * 1024,
    )
    # As the service runs it: the ingest gate undoes Content-Encoding itself.
    app = http_app(http)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, producer, rollups
    finally:
        await client.close()


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


async def test_ingest_publishes_valid_samples_keyed_by_series_and_reports_rejections(api):
    client, producer, _ = api
    now = time.time()
    payload = {
        "samples": [
            {"name": "cpu", "value": 0.5, "labels": {"host": "a"}, "sampled_at": now},
            {"name": "cpu", "kind": "counter", "value": -1},
            {
                "name": "lat",
                "kind": "histogram",
                "value": 3.0,
                "buckets": [{"le": 0.5, "count": 1}, {"le": None, "count": 2}],
            },
        ]
    }
    response = await client.post(
        "/api/v1/metrics",
        data=gzip.compress(msgspec.json.encode(payload)),
        headers={**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status == 202
    answer = await response.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(1, "negative_counter")]
    assert [(o.topic, o.key) for o in producer.sent] == [
        (METRICS, series_id("cpu", {"host": "a"})),
        (METRICS, "lat"),
    ]
    hist = producer.sent[1].event
    assert isinstance(hist, MetricSampled)
    assert hist.count == 2


@pytest.mark.parametrize(
    ("headers", "data", "status", "error"),
    [
        ({}, b'{"samples": []}', 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, b'{"samples": []}', 401, "unauthorized"),
        ({**AUTH, "Content-Encoding": "compress"}, b"x", 415, "unsupported_encoding"),
        ({**AUTH, "Content-Type": "text/plain"}, b"x", 415, "unsupported_media_type"),
        (AUTH, b'{"samples": [', 400, "invalid_json"),
        (AUTH, b"x" * 70_000, 413, "too_large"),
        (AUTH, msgspec.json.encode({"samples": [{}] * 51}), 413, "too_many_samples"),
    ],
)
async def test_ingest_refusals(api, headers, data, status, error):
    client, producer, _ = api
    response = await client.post("/api/v1/metrics", data=data, headers=headers)
    assert response.status == status
    assert (await response.json())["error"] == error
    assert producer.sent == []


async def test_a_gzip_bomb_is_refused_by_the_decompressed_size(api):
    client, _, _ = api
    bomb = gzip.compress(b'{"samples": [' + b" " * 1_000_000 + b"]}")
    assert len(bomb) < 64 * 1024
    response = await client.post(
        "/api/v1/metrics", data=bomb, headers={**AUTH, "Content-Encoding": "gzip"}
    )
    assert response.status == 413


async def test_an_all_rejected_batch_is_a_400_with_reasons(api):
    client, _, _ = api
    response = await client.post(
        "/api/v1/metrics",
        data=msgspec.json.encode({"samples": [{"name": "x y", "value": 1}]}),
        headers=AUTH,
    )
    assert response.status == 400
    (rejected,) = (await response.json())["rejected"]
    assert rejected["reason"] == "schema_violation"


async def test_metrics_apps_exposes_the_latest_application_values(api):
    client, _, rollups = api
    rollups.add(MetricSampled(name="queue_depth", value=3, sampled_at=10.0), ("t", 0), 0)
    rollups.add(MetricSampled(name="queue_depth", value=5, sampled_at=20.0), ("t", 0), 1)
    rollups.add(MetricSampled(name="queue_depth", value=4, sampled_at=15.0), ("t", 0), 2)
    response = await client.get("/metrics/apps")
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert await response.text() == "# TYPE queue_depth gauge\nqueue_depth 5\n"


def window(name: str, start: float, size: float, value: float, **labels: str) -> ClosedWindow:
    return ClosedWindow(
        series=series_id(name, labels),
        name=name,
        kind=MetricKind.COUNTER,
        labels=labels,
        start=start,
        end=start + size,
        count=2,
        total=value,
        minimum=value / 4,
        maximum=value / 2,
        last=value / 2,
        increase=value,
        quantiles={"p50": 0.1},
    )


async def test_series_api_reaggregates_history_by_step_with_matchers(api, pool, unique):
    client, _, _ = api
    name = f"req_{unique}"
    history = RollupHistory(pool)
    t0 = (time.time() // 3600) * 3600 - 3600
    windows = [window(name, t0 + i * 10, 10, 10.0, host=h) for i in range(12) for h in "ab"]
    assert await history.store(windows, time.time()) == 0
    response = await client.get(
        "/api/v1/series",
        params=[
            ("name", name),
            ("match", 'host="a"'),
            ("start", str(t0)),
            ("end", str(t0 + 120)),
            ("step", "20s"),
        ],
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["step"], body["window_s"]) == (20, 10)
    (series,) = body["series"]
    assert series["labels"] == {"host": "a"}
    assert [(p["t"], p["count"], p["sum"], p["rate"]) for p in series["points"]] == [
        (t0 + i * 20, 4, 20.0, 1.0) for i in range(6)
    ]
    response = await client.get("/api/v1/series", params={"name": name, "step": "1m"})
    assert (await response.json())["window_s"] == 60, "the largest window dividing the step"
    response = await client.get("/api/v1/series", params={"name": name, "step": "7s"})
    assert response.status == 400
    assert (await response.json())["error"] == "bad_step"
    response = await client.get("/api/v1/series")
    assert response.status == 400


async def test_history_is_partitioned_by_day_and_expired_days_are_dropped_whole(pool, unique):
    history = RollupHistory(pool, RetentionPolicy(retention_days=30, create_ahead_days=2))
    now = time.time()
    old_day = dt.date(2001, 1, 1)
    await history._create({old_day})
    stale = window(f"old_{unique}", now - 40 * 86400, 10, 1.0)
    assert await history.store([stale], now) == 1, "past retention: not written"
    plan = await history.maintain(now)
    assert old_day in plan.drop
    days = await history.partitions()
    today = day_of(now)
    assert old_day not in days
    assert {today, today + dt.timedelta(days=1), today + dt.timedelta(days=2)} <= set(days)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT relkind FROM pg_class WHERE relname = 'rollups'"
            " AND relnamespace = 'metrics_ingest'::regnamespace"
        )
        assert (await cursor.fetchone()) == ("p",), "declaratively partitioned"


async def test_a_re_emitted_window_overwrites_its_row(pool, unique):
    history = RollupHistory(pool)
    now = time.time()
    first = window(f"same_{unique}", now - 100, 10, 1.0)
    await history.store([first], now)
    await history.store([window(f"same_{unique}", now - 100, 10, 5.0)], now)
    async with await psycopg.AsyncConnection.connect(pool.conninfo) as conn:
        cursor = await conn.execute(
            "SELECT count(*), max(sum) FROM metrics_ingest.rollups WHERE name = %s",
            (f"same_{unique}",),
        )
        assert await cursor.fetchone() == (1, 5.0)


async def test_history_keeps_labels_and_values_that_need_copy_escaping(pool, unique):
    """Rows travel as COPY text: tabs, newlines, backslashes and quotes in label values
    (and so in the series id), extreme floats and quantiles arrive exactly."""
    history = RollupHistory(pool)
    t0 = (time.time() // 3600) * 3600 - 3600
    labels = {"path": 'C:\\tmp\\new\tline\nnext "quoted"\r', "plain": "ok"}
    tricky = ClosedWindow(
        series=series_id(f"esc_{unique}", labels),
        name=f"esc_{unique}",
        kind=MetricKind.GAUGE,
        labels=labels,
        start=t0,
        end=t0 + 10,
        count=3,
        total=1e300,
        minimum=-1.5e-300,
        maximum=1e300,
        last=0.1 + 0.2,
        increase=0.0,
        quantiles={"p50": 0.25, "p99": 7.5},
    )
    assert await history.store([tricky], time.time()) == 0
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT series, labels, sum, min, last, quantiles, window_start, window_end"
            " FROM metrics_ingest.rollups WHERE name = %s",
            (f"esc_{unique}",),
        )
        rows = await cursor.fetchall()
    assert len(rows) == 1
    series, stored_labels, total, low, last, quantiles, start, end = rows[0]
    assert series == tricky.series
    assert stored_labels == labels
    assert (total, low, last) == (1e300, -1.5e-300, 0.1 + 0.2)
    assert quantiles == {"p50": 0.25, "p99": 7.5}
    assert (start.timestamp(), end.timestamp()) == (t0, t0 + 10)
