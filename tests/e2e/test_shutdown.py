"""SIGTERM stops each service within 10 seconds, exit code 0, with its offsets committed."""

from __future__ import annotations

import re
import time
import urllib.request

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from opsmesh.events import (
    Alert,
    AlertStatus,
    HealthReported,
    HealthStatus,
    MetricSampled,
    NotificationRequested,
    NotifyReason,
    SignalKind,
    SignalObserved,
    SignalSource,
    SlowQueryObserved,
)
from opsmesh.events.base import Event
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import (
    GROUP_ALERT_ENGINE,
    GROUP_HEALTH_AGGREGATOR,
    GROUP_METRICS_INGEST,
    GROUP_NOTIFIER,
    GROUP_QUERY_ANALYZER,
    HEALTH,
    METRICS,
    NOTIFICATIONS,
    SIGNALS,
    SLOW_QUERIES,
    Topic,
)
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.e2e


def _event(service: str, unique: str, now: float) -> tuple[Topic, str, Event]:
    if service == "metrics-ingest":
        return (
            METRICS,
            GROUP_METRICS_INGEST,
            MetricSampled(name="e2e_shutdown", value=1.0, labels={"run": unique}, sampled_at=now),
        )
    if service == "query-analyzer":
        return (
            SLOW_QUERIES,
            GROUP_QUERY_ANALYZER,
            SlowQueryObserved(
                sql="SELECT 1",
                duration_ms=1.0,
                database=f"db-{unique}",
                application="e2e",
                started_at=now,
            ),
        )
    if service == "health-aggregator":
        return (
            HEALTH,
            GROUP_HEALTH_AGGREGATOR,
            HealthReported(
                service=f"shutdown-{unique}",
                instance="i",
                status=HealthStatus.PASS,
                reported_at=now,
            ),
        )
    if service == "alert-engine":
        # A signal no rule matches: consumed and committed, with nothing downstream.
        return (
            SIGNALS,
            GROUP_ALERT_ENGINE,
            SignalObserved(
                source=SignalSource.METRICS,
                kind=SignalKind.ROLLUP,
                name=f"unmatched_{unique}",
                subject=unique,
                value=1.0,
                observed_at=now,
            ),
        )
    return (
        NOTIFICATIONS,
        GROUP_NOTIFIER,
        NotificationRequested(
            idempotency_key=f"shutdown-{unique}",
            receiver="default",
            group_key=unique,
            status=AlertStatus.FIRING,
            reason=NotifyReason.FIRST_NOTIFICATION,
            alerts=[
                Alert(
                    fingerprint="0" * 16,
                    status=AlertStatus.FIRING,
                    labels={"alertname": "Shutdown", "run": unique},
                    starts_at=now,
                )
            ],
            requested_at=now,
        ),
    )


def _consumed_ok(url: str, topic: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = (
        rf'^opsmesh_consumer_records_total\{{outcome="ok",topic="{re.escape(topic)}"\}} (\S+)$'
    )
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


async def _group_state(bootstrap: str, group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    # DescribeGroups: (error_code, group_id, state, protocol_type, protocol, members, ...)
    return next(
        ((str(g[2]), len(g[5])) for r in responses for g in r.groups if g[1] == group),
        ("Unknown", 0),
    )


async def _committed_and_end(bootstrap: str, group: str, topic: Topic) -> tuple[dict, dict]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = {
            tp.partition: m.offset
            for tp, m in (await admin.list_consumer_group_offsets(group)).items()
            if tp.topic == topic.name
        }
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(
            [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        )
    finally:
        await consumer.stop()
    return committed, {tp.partition: offset for tp, offset in ends.items() if offset > 0}


async def _metrics_rollup_durable(dsn: str, unique: str) -> bool:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM metrics_ingest.rollups WHERE labels->>'run' = %s", (unique,)
        )
        row = await cursor.fetchone()
        return bool(row and row[0])


@pytest.mark.parametrize(
    "service", ["notifier", "metrics-ingest", "query-analyzer", "health-aggregator", "alert-engine"]
)
async def test_sigterm_drains_commits_and_exits_within_ten_seconds(
    infra: Endpoints, mesh: Mesh, service: str, unique: str
) -> None:
    topic, group, event = _event(service, unique, time.time())
    url = mesh.running[service].url
    # An earlier test's SIGKILLed instance stays a member until its session times out, and
    # the rebalance that follows would revoke partitions mid-test: wait until the only
    # member is the running instance.
    await eventually(
        lambda: _group_state(infra.kafka_bootstrap, group),
        until=lambda state: state == ("Stable", 1),
        what=f"{group} to be stable",
    )
    before = _consumed_ok(url, topic.name)
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        [sent] = await producer.enqueue([Outgoing(topic, unique, event)])
        record = await sent  # its partition and offset
    finally:
        await producer.stop()

    async def consumed() -> float:
        return _consumed_ok(url, topic.name)

    await eventually(consumed, until=lambda n: n > before, what=f"{service} consumed the record")
    if service == "metrics-ingest":
        # Samples in open windows are held back from the commit by design; wait until the
        # window is closed and stored, which is when its offsets become committable.
        await eventually(
            lambda: _metrics_rollup_durable(infra.pg_dsn, unique),
            until=bool,
            what="the window to be durable",
        )

    started = time.monotonic()
    exit_code = mesh.stop(service, grace_s=10)
    elapsed = time.monotonic() - started
    try:
        assert exit_code == 0, f"{service} did not exit cleanly within 10 s (code {exit_code})"
        assert elapsed < 10
        committed, ends = await _committed_and_end(infra.kafka_bootstrap, group, topic)
        assert committed.get(record.partition, -1) > record.offset, (service, record, committed)
        if topic != SIGNALS:  # every service reports on itself there, all the time
            for partition, end in ends.items():
                assert committed.get(partition) == end, (service, partition, committed, ends)
    finally:
        mesh.restart(service)
