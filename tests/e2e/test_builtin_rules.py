"""Every built-in rule, proven end to end: the raw events an application sends (metric
samples over Kafka and HTTP, slow-query events, health checks and heartbeats, request
profiles and a cache's hit ratio through the producer SDK, a CDN purge), a CDN provider's
canary that starts failing, or a fault in the mesh itself (a destination that fails until
its notification is dead-lettered, a consumer that stalls) go into the five real services,
and each of the thirteen rules that ``opsmesh setup-default-alerts`` installs fires, its
notification reaches a webhook through the real notifier, and it resolves with a second,
resolved notification.

The rules are the installed file, with one change: every duration in it (``for``,
``keep_firing_for``, ``window``, ``quiet_for``) is divided by 60 and capped at 5 s, so an
hour of rule time passes in seconds (``rules_as_run``). No service setting can shorten a
rule's own timing, and the timings are what ``default_test.yml`` proves in simulated
time; here the seams are under test — signal names, stats, labels, templates, routing and
delivery — so everything else is compared with the installed file and must be equal.

The services run against a broker of their own (a stalled consumer, and the built-in rules
reading every signal, must not meet the session's other meshes), a database of their own
in the session's PostgreSQL, beside a small application database with HypoPG that
query-analyzer plans against, and a Redis database of their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
import yaml
from psycopg import sql

from alert_engine.core.rules import Rule, parse_rules
from opsmesh.durations import parse_duration
from opsmesh.events import HealthReported, HealthStatus, MetricSampled, SlowQueryObserved
from opsmesh.events.cdn import CDN_HEALTH_SERVICE, purge_integration, purge_key
from opsmesh.events.health import ReportKind
from opsmesh.events.metrics import MetricKind
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.admin import ensure_topics
from opsmesh.labels import series_id
from opsmesh.topics import GROUP_QUERY_ANALYZER, HEALTH, METRICS, SLOW_QUERIES, partition_for
from opsmesh_client.cache import Cache, Namespace
from opsmesh_client.cache.observed import STATIC_HIT_RATIO_TARGET, attach, detach
from opsmesh_client.cdn.health import AggregatorHealth
from opsmesh_client.cdn.routing import CdnRouter
from opsmesh_client.cdn.urls import cdn_url, router_from_config
from opsmesh_client.client import Client
from opsmesh_client.settings import load
from opsmesh_client.testing import compute_for
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.kafka import KafkaServer
from opsmesh_dev.infra.process import free_port, port_open, spawn, terminate, wait_until
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.cdn_edge import Edges, running_edges
from tests.e2e.conftest import Sink

# The first test also waits for the world to start (a broker and five services).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Rule time runs 60 times faster, and no rule waits longer than 5 s.
SPEEDUP = 60.0
LONGEST_S = 5.0
TIMINGS = {
    "for": "for_s",
    "keep_firing_for": "keep_firing_for_s",
    "window": "window_s",
    "quiet_for": "quiet_for_s",
    "absent_for": "absent_for_s",
}

WRITE_TOKEN = "builtin-rules-writer-0123456789"
METRICS_TOKEN = "builtin-rules-metrics-0123456789"
REDIS_DB = 10
# The CDN providers: one whose canary health-aggregator probes, one that refuses purges.
CDN_PROBED = "cdn-edge"
CDN_REFUSING = "cdn-refuses"
QA_WINDOW_S = 10  # query-analyzer's statistics windows (its smallest)

# A table that lacks the index its hot query needs, ANALYZEd so the planner's costs are real.
APPLICATION_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total numeric(10, 2) NOT NULL
);
INSERT INTO orders
SELECT g, 1 + (g * 7919) % 20000, (ARRAY['paid', 'shipped', 'pending'])[1 + g % 3], g % 1000
FROM generate_series(1, 100000) g;
ANALYZE orders;
"""
UNINDEXED_QUERY = "SELECT * FROM orders WHERE customer_id = {}"


# -- the rules as installed, and as run ---------------------------------------------------


@dataclass(frozen=True)
class RuleFiles:
    installed: Path
    as_run: Path


def rules_as_run(installed: str) -> str:
    """The installed rules with every duration divided by SPEEDUP, at most LONGEST_S."""
    document = yaml.safe_load(installed)
    for group in document["groups"]:
        for rule in group["rules"]:
            for field in TIMINGS:
                if field in rule:
                    rule[field] = min(parse_duration(rule[field]) / SPEEDUP, LONGEST_S)
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory: pytest.TempPathFactory) -> RuleFiles:
    workdir = tmp_path_factory.mktemp("builtin-rules")
    installed = workdir / "rules" / "default.yml"
    cli = Path(sys.executable).with_name("opsmesh")
    done = subprocess.run(
        [str(cli), "setup-default-alerts", "--output", str(installed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    as_run = workdir / "rules-as-run.yml"
    as_run.write_text(rules_as_run(installed.read_text()))
    return RuleFiles(installed, as_run)


def _parsed(path: Path) -> list[Rule]:
    return parse_rules(path.read_text(), source=str(path))


# -- the world: a broker, databases, a sink and the five services --------------------------


@dataclass
class World:
    mesh: Mesh
    sink: Sink
    bootstrap: str
    dsn: str  # the mesh's own database
    app_database: str  # the application database query-analyzer plans on, by its event name
    app_dsn: str
    edges: Edges
    producer: EventProducer | None = None  # one per test, on its event loop

    async def publish(self, *items: Outgoing) -> None:
        assert self.producer is not None
        await self.producer.publish_many(items)


def _with_database(dsn: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=database)


def _redis_db(url: str, index: int) -> str:
    return f"{url.rsplit('/', 1)[0]}/{index}"


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    workdir = tmp_path_factory.mktemp("builtin-sink")
    port = free_port()
    out = workdir / "received.jsonl"
    process = spawn(
        [sys.executable, "-m", "opsmesh_dev.tools.sink", "--port", str(port), "--out", str(out)],
        log_file=workdir / "sink.log",
    )
    try:
        wait_until(lambda: port_open(port), timeout_s=20, what="webhook sink", process=process)
        yield Sink(f"http://127.0.0.1:{port}/hooks/builtin", out)
    finally:
        terminate(process)


def _alertmanager_config(sink: Sink, broken_url: str) -> str:
    # One group per alert ('...'), so each notification is about one alert; short timers.
    # A receiver whose webhook nothing listens on: the destination that fails until its
    # notification is dead-lettered (NotificationDeadLettersGrowing).
    return f"""
global:
  resolve_timeout: 1h
route:
  receiver: default
  group_by: ['...']
  group_wait: 200ms
  group_interval: 500ms
  repeat_interval: 1h
  routes:
    - matchers: ['destination="broken"']
      receiver: broken
receivers:
  - name: default
    webhook_configs: [{{url: "{sink.url}"}}]
  - name: broken
    webhook_configs: [{{url: "{broken_url}"}}]
"""


@pytest.fixture(scope="module")
def edges() -> Iterator[Edges]:
    with running_edges() as running:
        running.refusing.add(CDN_REFUSING)
        yield running


def _cdn_files(edges: Edges, workdir: Path) -> tuple[Path, Path]:
    """health-aggregator's canary probe of CDN_PROBED, and the notifier's providers (the
    SDK's generic provider) for both."""
    probes = workdir / "probes.yml"
    probe = {
        "service": CDN_HEALTH_SERVICE,
        "check": CDN_PROBED,
        "kind": "http",
        "target": edges.canary_url(CDN_PROBED),
        "interval_s": 0.5,
        "timeout_s": 2,
        "body_contains": "canary",
    }
    probes.write_text(yaml.safe_dump([probe]))
    providers = workdir / "cdn.yml"
    configured = {
        name: {
            "type": "generic",
            "base_url": f"{edges.base}/{name}",
            "purge_url": edges.purge_url(name),
            "timeout_s": 5,
        }
        for name in (CDN_PROBED, CDN_REFUSING)
    }
    providers.write_text(yaml.safe_dump(configured))
    return probes, providers


@pytest.fixture(scope="module")
def started_world(
    infra: Endpoints,
    rule_files: RuleFiles,
    sink: Sink,
    edges: Edges,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("builtin-mesh")
    workdir.chmod(0o755)
    suffix = uuid.uuid4().hex[:8]
    mesh_db, app_db = f"builtin_mesh_{suffix}", f"builtin_app_{suffix}"
    kafka = KafkaServer(workdir / "kafka")
    mesh: Mesh | None = None
    try:
        with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
            for database in (mesh_db, app_db):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        app_dsn = _with_database(infra.pg_dsn, app_db)
        with psycopg.connect(app_dsn, autocommit=True) as conn:
            conn.execute(APPLICATION_SCHEMA)
        kafka.start()
        asyncio.run(ensure_topics({"bootstrap_servers": kafka.bootstrap}))
        endpoints = Endpoints(
            kafka.bootstrap,
            _with_database(infra.pg_dsn, mesh_db),
            _redis_db(infra.redis_url, REDIS_DB),
        )
        probes, cdn_providers = _cdn_files(edges, workdir)
        am_config = workdir / "alertmanager.yml"
        am_config.write_text(
            _alertmanager_config(sink, f"http://127.0.0.1:{free_port()}/hooks/broken")
        )
        mesh = Mesh(
            endpoints,
            workdir / "services",
            common_env={"OPSMESH_SELF_REPORT_S": "1"},
            env={
                "metrics-ingest": {
                    "METRICS_INGEST_WINDOWS_S": "1",
                    "METRICS_INGEST_ALLOWED_LATENESS_S": "0.5",
                    "METRICS_INGEST_IDLE_GRACE_S": "0.5",
                    "METRICS_INGEST_API_TOKEN": METRICS_TOKEN,
                },
                "query-analyzer": {
                    "QUERY_ANALYZER_WINDOW_S": str(QA_WINDOW_S),
                    "QUERY_ANALYZER_ANALYSIS_INTERVAL_S": "1",
                    "QUERY_ANALYZER_TRACE_SETTLE_S": "0.5",
                    "QUERY_ANALYZER_TARGET_DSN": app_dsn,
                    "QUERY_ANALYZER_TARGET_DATABASE": app_db,
                    "QUERY_ANALYZER_SLOW_ROUTE_GRACE_S": "1",
                },
                "health-aggregator": {"HEALTH_AGGREGATOR_PROBES_FILE": str(probes)},
                "alert-engine": {
                    "ALERT_ENGINE_RULES_FILES": str(rule_files.as_run),
                    "ALERT_ENGINE_CONFIG_FILE": str(am_config),
                    "ALERT_ENGINE_API_TOKENS": f"{WRITE_TOKEN}:write",
                    "ALERT_ENGINE_FLUSH_TICK_S": "0.05",
                },
                "notifier": {
                    "NOTIFIER_RECEIVERS_FILE": str(am_config),
                    "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
                    "NOTIFIER_RETRY_INITIAL_S": "0.1",
                    "NOTIFIER_RETRY_DEADLINE_S": "2",
                    "NOTIFIER_CDN_PROVIDERS_FILE": str(cdn_providers),
                },
            },
        )
        mesh.start()
        yield World(mesh, sink, kafka.bootstrap, endpoints.pg_dsn, app_db, app_dsn, edges)
    finally:
        if mesh is not None:
            mesh.stop_all()
        kafka.stop()
        with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
            for database in (mesh_db, app_db):
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )


@pytest.fixture
async def world(started_world: World) -> Any:
    """The started world, with a producer on this test's event loop."""
    producer = EventProducer(
        {"bootstrap_servers": started_world.bootstrap}, source="/tests/builtin"
    )
    await producer.start()
    started_world.producer = producer
    try:
        yield started_world
    finally:
        started_world.producer = None
        await producer.stop()


# -- waiting on the sink --------------------------------------------------------------------


async def drive(
    arrived: Callable[[], bool],
    *,
    what: str,
    step: Callable[[], Awaitable[None]] | None = None,
    every_s: float = 0.1,
    timeout_s: float = 60.0,
) -> None:
    """Run ``step`` (the traffic an application keeps sending) every ``every_s`` until
    ``arrived()``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    next_step = 0.0
    while not arrived():
        now = time.monotonic()
        assert now < deadline, f"{what}: nothing within {timeout_s}s"
        if step is not None and now >= next_step:
            await step()
            next_step = now + every_s
        await asyncio.sleep(0.02)  # polling interval of the wait, not synchronisation


def notified(sink: Sink, status: str, **labels: str) -> Callable[[], bool]:
    return lambda: any(p["status"] == status for p in sink.notifications(**labels))


def fired_and_resolved(sink: Sink, **labels: str) -> dict[str, Any]:
    """The one alert's two notifications, firing then resolved; returns the alert as fired."""
    payloads = sink.notifications(**labels)
    assert [p["status"] for p in payloads] == ["firing", "resolved"], payloads
    firing, resolved = payloads
    assert firing["notificationReason"] == "first_notification"
    assert resolved["notificationReason"] == "all_resolved"
    (alert,) = firing["alerts"]
    (ended,) = resolved["alerts"]
    assert ended["fingerprint"] == alert["fingerprint"]
    assert ended["status"] == "resolved"
    assert ended["endsAt"] != "0001-01-01T00:00:00Z"
    fired: dict[str, Any] = alert
    return fired


# -- opsmesh-applications -------------------------------------------------------------------


def runbook(world: World, page: str) -> str:
    """A rule's ``runbooks/<page>`` as notifications carry it: a clickable URL under
    OPSMESH_RUNBOOK_BASE_URL, which the mesh points at its console (it serves runbooks/)."""
    return f"http://127.0.0.1:{world.mesh.port('console')}/runbooks/{page}"


async def test_high_error_rate(world: World, unique: str) -> None:
    """A service's error-ratio gauge, sampled over Kafka, above 5% and back."""
    service = f"checkout-{unique}"
    labels = {"service": service, "env": "e2e"}
    ratio = [0.2]

    async def sample() -> None:
        event = MetricSampled(
            name="http_error_ratio", value=ratio[0], labels=labels, sampled_at=time.time()
        )
        await world.publish(Outgoing(METRICS, series_id(event.name, labels), event))

    mine = {"alertname": "HighErrorRate", "service": service}
    await drive(notified(world.sink, "firing", **mine), step=sample, what="HighErrorRate firing")
    ratio[0] = 0.01
    await drive(
        notified(world.sink, "resolved", **mine), step=sample, what="HighErrorRate resolved"
    )

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "env": "e2e", "severity": "page"}
    assert alert["annotations"]["summary"] == f"{service} error ratio is 20.0%"
    assert alert["annotations"]["runbook_url"] == runbook(world, "high-error-rate.md")


BOUNDS = (0.25, 0.5, 1.0, 2.0, 5.0)


async def test_high_latency_p95(world: World, unique: str) -> None:
    """A latency histogram posted over HTTP: each window's p95 (from the bucket increases)
    above 1 s, then fast again."""
    service = f"search-{unique}"
    labels = {"service": service, "route": "/search"}
    counts = {"fast": 0, "slow": 0}  # cumulative observations <= 0.25 s and in (1, 2] s
    slow = [True]

    async def post(session: aiohttp.ClientSession) -> None:
        counts["slow" if slow[0] else "fast"] += 10
        fast, total = counts["fast"], counts["fast"] + counts["slow"]
        buckets = [{"le": le, "count": fast if le < 2.0 else total} for le in BOUNDS]
        sample = {
            "name": "http_request_duration_seconds",
            "kind": MetricKind.HISTOGRAM.value,
            "value": 0.2 * fast + 1.5 * counts["slow"],
            "count": total,
            "buckets": [*buckets, {"le": "+Inf", "count": total}],
            "labels": labels,
        }
        async with session.post(
            f"{world.mesh.running['metrics-ingest'].url}/api/v1/metrics",
            json={"samples": [sample]},
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        ) as response:
            assert response.status in (200, 202), await response.text()

    mine = {"alertname": "HighLatencyP95", "service": service}
    async with aiohttp.ClientSession() as session:
        await drive(
            notified(world.sink, "firing", **mine),
            step=lambda: post(session),
            what="HighLatencyP95 firing",
        )
        slow[0] = False
        await drive(
            notified(world.sink, "resolved", **mine),
            step=lambda: post(session),
            what="HighLatencyP95 resolved",
        )

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "route": "/search", "severity": "page"}
    # All of a slow window's observations are in (1, 2]: p95 = 1 + (2 - 1) * 0.95.
    assert alert["annotations"]["summary"] == f"{service} p95 latency is 1.95 s"
    assert alert["annotations"]["runbook_url"] == runbook(world, "high-latency-p95.md")


# -- opsmesh-queries ------------------------------------------------------------------------


def _slow_query(database: str, sql_text: str, duration_ms: float, at: float) -> Outgoing:
    event = SlowQueryObserved(
        sql=sql_text, duration_ms=duration_ms, database=database, application="shop", started_at=at
    )
    return Outgoing(SLOW_QUERIES, f"{database}/{sql_text}", event)


async def test_slow_query_regression(world: World, unique: str) -> None:
    """A query's p95 ten times its baseline in query-analyzer's recent windows, until the
    query is fast again; the finding then goes quiet and the alert resolves."""
    database = f"regress_{unique}"
    query = "SELECT * FROM invoices WHERE account_id = 7"
    now = time.time()
    closed = now - now % QA_WINDOW_S  # the end of the last closed window
    # The baseline well before the recent windows; the regression in the 4th-newest closed
    # window, which stays among the 5 recent ones for at least another window.
    baseline_at, recent_at = closed - 30 * QA_WINDOW_S, closed - 4 * QA_WINDOW_S
    await world.publish(
        *(_slow_query(database, query, 10.0, baseline_at + i * 0.1) for i in range(30)),
        *(_slow_query(database, query, 100.0, recent_at + i * 0.1) for i in range(30)),
    )
    mine = {"alertname": "SlowQueryRegression", "database": database}
    await drive(notified(world.sink, "firing", **mine), what="SlowQueryRegression firing")

    # Fast again (the fix deployed): the recent p95 falls back to the baseline's.
    await world.publish(
        *(_slow_query(database, query, 10.0, recent_at + 1 + i * 0.005) for i in range(1000))
    )
    await drive(notified(world.sink, "resolved", **mine), what="SlowQueryRegression resolved")

    alert = fired_and_resolved(world.sink, **mine)
    fingerprint = alert["labels"]["fingerprint"]
    assert alert["labels"] == {
        **mine,
        "fingerprint": fingerprint,
        "finding": "p95_regression",
        "severity": "ticket",
    }
    summary = alert["annotations"]["summary"]
    assert re.fullmatch(
        rf"query {fingerprint} on {database} is (\d+\.\d)x slower than its baseline", summary
    ), summary
    assert float(summary.split(" is ")[1].split("x")[0]) >= 5  # 100 ms against 10 ms
    assert alert["annotations"]["runbook_url"] == runbook(world, "slow-query-regression.md")


async def test_n_plus_one_detected(world: World, unique: str) -> None:
    """One request's trace: a list query, then the same lookup once per row."""
    database, application, trace = f"nplus_{unique}", f"blog-{unique}", f"trace-{unique}"
    now = time.time()

    def span(i: int, sql_text: str, duration_ms: float) -> SlowQueryObserved:
        return SlowQueryObserved(
            sql=sql_text,
            duration_ms=duration_ms,
            database=database,
            application=application,
            started_at=now + 0.01 * i,
            trace_id=trace,
            span_id=f"s{i}",
            parent_span_id="view",
        )

    await world.publish(
        *(
            Outgoing(SLOW_QUERIES, trace, e)  # one key: the request's spans stay together
            for e in (
                span(0, "SELECT * FROM posts ORDER BY id LIMIT 20", 4),
                *(span(i, f"SELECT * FROM authors WHERE id = {i}", 15) for i in range(1, 7)),
            )
        )
    )
    mine = {"alertname": "NPlusOneDetected", "application": application}
    await drive(notified(world.sink, "firing", **mine), what="NPlusOneDetected firing")
    # Nothing more from that request: the finding goes quiet and the alert resolves.
    await drive(notified(world.sink, "resolved", **mine), what="NPlusOneDetected resolved")

    alert = fired_and_resolved(world.sink, **mine)
    fingerprint = alert["labels"]["fingerprint"]
    assert alert["labels"] == {
        **mine,
        "database": database,
        "fingerprint": fingerprint,
        "finding": "n_plus_one",
        "severity": "ticket",
    }
    assert alert["annotations"]["summary"] == (
        f"{application} runs query {fingerprint} 6 times per request (N+1)"
    )
    assert alert["annotations"]["runbook_url"] == runbook(world, "n-plus-one-detected.md")


async def test_missing_index_advised(world: World) -> None:
    """A slow lookup on a column without an index, in the application database that
    query-analyzer plans on: HypoPG validates the index, the alert fires; the index is
    created as the runbook says (``opsmesh create-missing-indexes --apply``), the advice
    stops and the alert resolves."""
    database = world.app_database
    now = time.time()
    await world.publish(
        *(_slow_query(database, UNINDEXED_QUERY.format(42 + i), 250.0, now + i) for i in range(3))
    )
    mine = {"alertname": "MissingIndexAdvised", "database": database}
    await drive(notified(world.sink, "firing", **mine), what="MissingIndexAdvised firing")

    cli = Path(sys.executable).with_name("opsmesh")
    created = await asyncio.to_thread(
        subprocess.run,
        [
            str(cli),
            "create-missing-indexes",
            "--dsn",
            world.dsn,
            "--target-dsn",
            world.app_dsn,
            "--database",
            database,
            "--apply",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OPSMESH_LOG_LEVEL": "WARNING"},
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert "created" in created.stdout, created.stdout
    await drive(notified(world.sink, "resolved", **mine), what="MissingIndexAdvised resolved")

    alert = fired_and_resolved(world.sink, **mine)
    fingerprint = alert["labels"]["fingerprint"]
    assert alert["labels"] == {
        **mine,
        "fingerprint": fingerprint,
        "table": alert["labels"]["table"],
        "columns": "customer_id",
        "finding": "index_advised",
        "severity": "info",
    }
    assert alert["labels"]["table"].split(".")[-1] == "orders"
    summary = alert["annotations"]["summary"]
    assert re.fullmatch(
        rf"an index on {re.escape(alert['labels']['table'])} \(customer_id\) would cut the"
        rf" planned cost of query {fingerprint} on {database} by \d+%",
        summary,
    ), summary
    assert alert["annotations"]["runbook_url"] == runbook(world, "missing-index-advised.md")


# -- opsmesh-profiles -----------------------------------------------------------------------


def _profile_slow_requests(
    bootstrap: str, service: str, route: str, durations_s: list[float]
) -> None:
    """What an application's SDK sends for requests of these durations: each request is
    profiled by pyinstrument through the SDK while it works for a few of its intervals, and
    closed with its duration; the SDK publishes the slow ones to real Kafka."""
    client = Client(
        load({}, service=service, kafka=bootstrap, instance="web-1", profile_slow_ms=500),
    )
    try:
        for duration_s in durations_s:
            opened = client.begin_profile()
            assert opened is not None
            compute_for(0.05)
            client.end_profile(
                opened,
                route=route,
                method="GET",
                status=200,
                duration_s=duration_s,
                started_at=time.time() - duration_s,
            )
        assert client.flush(10.0)
        assert client.stats()["dropped"] == {}
    finally:
        client.close()


async def test_slow_route(world: World, unique: str) -> None:
    """An application's SDK profiles a route's requests of 1.2 to 2 s: query-analyzer
    closes the route's window into a p95 above 1 s, the alert fires; nothing slow follows
    and it resolves."""
    service, route = f"shop-{unique}", "/checkout/{cart}"
    durations_s = [1.2, 1.4, 1.6, 1.8, 2.0]
    await asyncio.to_thread(_profile_slow_requests, world.bootstrap, service, route, durations_s)
    mine = {"alertname": "SlowRoute", "service": service}
    await drive(notified(world.sink, "firing", **mine), what="SlowRoute firing")
    await drive(notified(world.sink, "resolved", **mine), what="SlowRoute resolved")

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "route": route, "severity": "ticket"}
    # The window's nearest-rank p95 of five durations is the slowest, 2000 ms (to the
    # SDK's float arithmetic, which the summary rounds away).
    assert alert["annotations"]["summary"] == (
        f"{service} {route}: p95 of its profiled requests is 2000 ms"
    )
    assert alert["annotations"]["runbook_url"] == runbook(world, "slow-route.md")


# -- opsmesh-caches -------------------------------------------------------------------------


async def test_cache_hit_ratio_below_target(world: World, unique: str) -> None:
    """An application's SDK cache answers half the lookups of a namespace whose target is
    the seed's 95 %: its client publishes the margin to real Kafka, metrics-ingest rolls it
    up, the alert fires; then every lookup hits and it resolves. The cache's ratio window
    is shortened as the rules' timings are (a second, from 20 lookups)."""
    service = f"assets-{unique}"
    client = Client(
        load({}, service=service, kafka=world.bootstrap, instance="web-1", metrics_interval_s=0.2)
    )
    cache = Cache(None, [Namespace("static", hit_ratio_target=STATIC_HIT_RATIO_TARGET)])
    attach(cache.tiers, client, l2=False, ratio_window_s=1.0, min_lookups=20)
    cache.set("logo.png", "<svg/>", namespace="static")
    hit_share = [0.5]

    async def lookups() -> None:
        for i in range(20):
            hit = i < 20 * hit_share[0]
            cache.get("logo.png" if hit else f"banner-{uuid.uuid4().hex}", namespace="static")

    mine = {"alertname": "CacheHitRatioBelowTarget", "service": service}
    try:
        await drive(
            notified(world.sink, "firing", **mine), step=lookups, what="CacheHitRatio firing"
        )
        hit_share[0] = 1.0
        await drive(
            notified(world.sink, "resolved", **mine), step=lookups, what="CacheHitRatio resolved"
        )
    finally:
        detach(cache.tiers, client)
        client.close()

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {
        **mine,
        "instance": "web-1",
        "namespace": "static",
        "target": "0.95",
        "severity": "ticket",
    }
    summary = alert["annotations"]["summary"]
    assert re.fullmatch(
        rf"{service} cache namespace static on web-1: hit ratio \d+\.\d%, below its 95% target",
        summary,
    ), summary
    assert alert["annotations"]["runbook_url"] == runbook(world, "cache-hit-ratio.md")


# -- opsmesh-health -------------------------------------------------------------------------


def _health(service: str, check: str, status: HealthStatus, **extra: Any) -> Outgoing:
    report = HealthReported(
        service=service,
        instance="i-1",
        check=check,
        status=status,
        reported_at=time.time(),
        **extra,
    )
    return Outgoing(HEALTH, f"{service}/i-1", report)


async def test_service_unhealthy(world: World, unique: str) -> None:
    """An instance reports its database check failing, then passing again."""
    service = f"billing-{unique}"
    await world.publish(_health(service, "db", HealthStatus.FAIL, ttl_s=600))
    mine = {"alertname": "ServiceUnhealthy", "service": service}
    await drive(notified(world.sink, "firing", **mine), what="ServiceUnhealthy firing")
    await world.publish(_health(service, "db", HealthStatus.PASS, ttl_s=600))
    await drive(notified(world.sink, "resolved", **mine), what="ServiceUnhealthy resolved")

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "instance": "i-1", "check": "db", "severity": "page"}
    assert alert["annotations"]["summary"] == f"{service} is failing check db on i-1"
    assert alert["annotations"]["runbook_url"] == runbook(world, "service-unhealthy.md")


async def test_heartbeat_missing(world: World, unique: str) -> None:
    """An instance heartbeats with a 1 s TTL and falls silent; it comes back (heartbeating
    with a TTL no pause of a loaded test machine can outlast)."""
    service = f"worker-{unique}"

    def beat(ttl_s: float) -> Outgoing:
        return _health(
            service, "heartbeat", HealthStatus.PASS, kind=ReportKind.HEARTBEAT, ttl_s=ttl_s
        )

    await world.publish(beat(1.0))
    mine = {"alertname": "HeartbeatMissing", "service": service}
    await drive(notified(world.sink, "firing", **mine), what="HeartbeatMissing firing")
    await world.publish(beat(600.0))
    await drive(notified(world.sink, "resolved", **mine), what="HeartbeatMissing resolved")

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "instance": "i-1", "severity": "page"}
    assert alert["annotations"]["summary"] == f"no heartbeat from i-1 ({service}) within its TTL"
    assert alert["annotations"]["runbook_url"] == runbook(world, "heartbeat-missing.md")


# -- opsmesh-pipeline -----------------------------------------------------------------------


async def test_notification_dead_letters_growing(world: World, unique: str) -> None:
    """An alert routed to a webhook that refuses every connection: the notifier retries
    until its deadline and dead-letters the notification; its own dead-letter count, which
    it reports as a signal, grows, and the alert about it reaches the working receiver.
    With no further dead letter the count stops growing and the alert resolves."""
    alert_from_prometheus = [
        {
            "labels": {"alertname": "CheckoutDown", "job": f"checkout-{unique}"}
            | {"destination": "broken"},
            "annotations": {"summary": "checkout is down"},
        }
    ]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{world.mesh.running['alert-engine'].url}/api/v2/alerts",
            json=alert_from_prometheus,
            headers={"Authorization": f"Bearer {WRITE_TOKEN}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()

    mine = {
        "alertname": "NotificationDeadLettersGrowing",
        "service": "notifier",
        "source_topic": "opsmesh.notifications",
    }
    await drive(
        notified(world.sink, "firing", **mine), what="NotificationDeadLettersGrowing firing"
    )
    await drive(
        notified(world.sink, "resolved", **mine), what="NotificationDeadLettersGrowing resolved"
    )

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "instance": alert["labels"]["instance"], "severity": "page"}
    assert alert["labels"]["instance"].startswith("notifier")
    assert re.fullmatch(
        r"notifications are being dead-lettered \(\d+\.\d\d/min over 10 min\)",
        alert["annotations"]["summary"],
    ), alert["annotations"]
    assert alert["annotations"]["runbook_url"] == runbook(
        world, "notification-dead-letters-growing.md"
    )
    with psycopg.connect(world.dsn) as conn:
        rows = conn.execute(
            "SELECT outcome, attempts FROM notifier.delivery_log WHERE receiver = 'broken'"
        ).fetchall()
    [(outcome, attempts)] = rows  # retried until its deadline, then dead-lettered once
    assert (outcome, attempts > 1) == ("failed", True), rows


async def test_consumer_lag_growing(world: World, unique: str) -> None:
    """query-analyzer's consumer stalls — another transaction holds the row lock its
    handler takes on the partition's applied offset — while an application keeps sending
    slow queries; the lag it reports grows, and the alert fires. The lock is released, the
    consumer catches up and the alert resolves, the traffic still flowing."""
    database = f"lag_{unique}"
    key = f"{database}/q"
    partition = partition_for(key, SLOW_QUERIES.partitions)
    sent = [0]

    async def query() -> None:
        sent[0] += 1
        event = SlowQueryObserved(
            sql=f"SELECT * FROM carts WHERE id = {sent[0]}",
            duration_ms=20,
            database=database,
            application="shop",
            started_at=time.time(),
        )
        await world.publish(Outgoing(SLOW_QUERIES, key, event))

    def applied() -> int:
        with psycopg.connect(world.dsn) as conn:
            row = conn.execute(
                "SELECT next_offset FROM opsmesh_applied_offsets"
                " WHERE consumer = %s AND topic = %s AND partition = %s",
                (GROUP_QUERY_ANALYZER, SLOW_QUERIES.name, partition),
            ).fetchone()
        return -1 if row is None else int(row[0])

    await query()
    await drive(lambda: applied() >= 0, what="the partition's first applied offset")
    mine = {
        "alertname": "ConsumerLagGrowing",
        "service": "query-analyzer",
        "topic": SLOW_QUERIES.name,
        "partition": str(partition),
    }
    with psycopg.connect(world.dsn) as locker:
        locker.execute(
            "SELECT * FROM opsmesh_applied_offsets"
            " WHERE consumer = %s AND topic = %s AND partition = %s FOR UPDATE",
            (GROUP_QUERY_ANALYZER, SLOW_QUERIES.name, partition),
        )
        stalled_at = applied()
        await drive(
            notified(world.sink, "firing", **mine), step=query, what="ConsumerLagGrowing firing"
        )
        assert applied() == stalled_at, "the consumer was stalled while the alert fired"
        locker.rollback()
    await drive(
        notified(world.sink, "resolved", **mine), step=query, what="ConsumerLagGrowing resolved"
    )
    assert applied() > stalled_at

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "group": GROUP_QUERY_ANALYZER, "severity": "ticket"}
    assert re.fullmatch(
        rf"consumer lag on {SLOW_QUERIES.name}\[{partition}\] grows by \d+\.\d records/s",
        alert["annotations"]["summary"],
    ), alert["annotations"]
    assert alert["annotations"]["runbook_url"] == runbook(world, "consumer-lag-growing.md")


# -- opsmesh-cdn ----------------------------------------------------------------------------


def _asset_router(world: World) -> tuple[CdnRouter, AggregatorHealth]:
    """What an application's SDK builds from its CDN file: CDN_PROBED preferred, then
    CDN_REFUSING (whose canary nobody probes: never reported unhealthy), health read from
    this mesh's health-aggregator."""
    providers = {
        name: {"type": "generic", "base_url": f"{world.edges.base}/{name}", "purge_url": url}
        for name, url in ((n, world.edges.purge_url(n)) for n in (CDN_PROBED, CDN_REFUSING))
    }
    router = router_from_config(
        {
            "providers": providers,
            "routing": {"default": [CDN_PROBED, CDN_REFUSING]},
            "health": {
                "url": world.mesh.running["health-aggregator"].url,
                "service": CDN_HEALTH_SERVICE,
                "interval_s": 0.2,
            },
        },
        start=False,
    )
    assert isinstance(router.health, AggregatorHealth)
    return router, router.health.start()


def _served_by(router: CdnRouter, provider: str) -> Callable[[], bool]:
    prefix = f"{router.providers[provider].asset_url('')}"
    return lambda: cdn_url("img/logo.png", router=router).startswith(prefix)


async def test_cdn_provider_failing(world: World) -> None:
    """health-aggregator probes a provider's canary asset; the edge starts answering 503:
    the SDK's cdn_url moves to the next provider, the probe's failure fires the alert naming
    the provider; the edge recovers, cdn_url comes back and the alert resolves."""
    router, health = _asset_router(world)
    try:
        await drive(lambda: health.healthy(CDN_PROBED) is True, what="the canary probed")
        assert _served_by(router, CDN_PROBED)()
        mine = {"alertname": "CdnProviderFailing", "check": CDN_PROBED}
        world.edges.fail(CDN_PROBED)
        try:
            await drive(_served_by(router, CDN_REFUSING), what="cdn_url switched", timeout_s=10)
            await drive(notified(world.sink, "firing", **mine), what="CdnProviderFailing firing")
        finally:
            world.edges.fail(CDN_PROBED, failing=False)
        await drive(_served_by(router, CDN_PROBED), what="cdn_url back", timeout_s=10)
        await drive(notified(world.sink, "resolved", **mine), what="CdnProviderFailing resolved")
    finally:
        health.stop()

    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "severity": "ticket"}
    assert alert["annotations"]["summary"] == (
        f"CDN provider {CDN_PROBED} is failing its canary probe;"
        " assets are served from the other providers"
    )
    assert alert["annotations"]["runbook_url"] == runbook(world, "cdn.md")


def _opsmesh(*args: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("opsmesh")
    return subprocess.run(
        [str(cli), *args], capture_output=True, text=True, timeout=60, check=False
    )


async def test_cdn_purge_dead_lettered(world: World, unique: str) -> None:
    """A deploy's purge (``opsmesh cdn purge``) for a provider that refuses it (403): the
    notifier purges it once, dead-letters it and emits its signal; the alert fires, and
    resolves once no other purge of that provider fails for its quiet time; ``opsmesh cdn
    status`` shows the providers' canaries and the failed purge."""
    purge_id = f"deploy-{unique}"
    published = await asyncio.to_thread(
        _opsmesh,
        *("cdn", "purge", "--prefix", "https://shop.example.com/static/"),
        *("--provider", CDN_REFUSING, "--id", purge_id, "--reason", "release"),
        *("--bootstrap", world.bootstrap),
    )
    assert published.returncode == 0, published.stderr
    mine = {"alertname": "CdnPurgeDeadLettered", "provider": CDN_REFUSING}
    await drive(notified(world.sink, "firing", **mine), what="CdnPurgeDeadLettered firing")
    await drive(notified(world.sink, "resolved", **mine), what="CdnPurgeDeadLettered resolved")

    assert world.edges.answered(CDN_REFUSING) == [403]  # refused once, never retried
    alert = fired_and_resolved(world.sink, **mine)
    assert alert["labels"] == {**mine, "severity": "ticket"}
    assert alert["annotations"]["summary"] == (
        f"a CDN purge for {CDN_REFUSING} was dead-lettered (1 since the notifier started):"
        " it may serve stale content"
    )
    assert alert["annotations"]["runbook_url"] == runbook(world, "cdn.md")

    status = await asyncio.to_thread(
        _opsmesh,
        *("cdn", "status", "--json"),
        *("--health-aggregator", world.mesh.running["health-aggregator"].url),
        *("--notifier", world.mesh.running["notifier"].url),
    )
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert CDN_PROBED in {check["check"] for check in shown["providers"]}
    [purged] = [row for row in shown["purges"] if row["idempotency_key"] == purge_key(purge_id)]
    assert purged["integration"] == purge_integration(CDN_REFUSING)
    assert purged["result"] == "failed"
    assert purged["error"].startswith("deterministic: ")


# -- every built-in rule has its test here, and runs as installed but for its timings --------

PROVEN = {
    "HighErrorRate": test_high_error_rate,
    "HighLatencyP95": test_high_latency_p95,
    "SlowQueryRegression": test_slow_query_regression,
    "NPlusOneDetected": test_n_plus_one_detected,
    "MissingIndexAdvised": test_missing_index_advised,
    "SlowRoute": test_slow_route,
    "CacheHitRatioBelowTarget": test_cache_hit_ratio_below_target,
    "ServiceUnhealthy": test_service_unhealthy,
    "HeartbeatMissing": test_heartbeat_missing,
    "NotificationDeadLettersGrowing": test_notification_dead_letters_growing,
    "ConsumerLagGrowing": test_consumer_lag_growing,
    "CdnProviderFailing": test_cdn_provider_failing,
    "CdnPurgeDeadLettered": test_cdn_purge_dead_lettered,
}


def test_every_builtin_rule_is_proven_here_as_installed(rule_files: RuleFiles) -> None:
    installed, as_run = _parsed(rule_files.installed), _parsed(rule_files.as_run)
    assert {r.name for r in installed} == set(PROVEN)
    assert len(as_run) == len(installed)
    for original, run in zip(installed, as_run, strict=True):
        timings = {attr: getattr(run, attr) for attr in TIMINGS.values()}
        assert dataclasses.replace(original, **timings) == run, original.name
        for attr, value in timings.items():
            before = getattr(original, attr)
            if before is None or before == 0:
                assert value == before, (original.name, attr)
            else:
                assert value == min(before / SPEEDUP, LONGEST_S), (original.name, attr)
