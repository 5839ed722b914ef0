"""Ingest through an outage of PostgreSQL or Redis: ``POST /api/v2/alerts`` needs neither,
so it answers 200 within a client's usual timeout while the other is paused, readiness
names what is down, and once it is back the alerts are persisted and notified.

The engine runs in process (``build``) over its own Kafka, PostgreSQL and Redis, started
here: pausing the session's PostgreSQL would stall every other test, and the engine's
consumer groups on the session's Kafka would take partitions from the e2e mesh's engine.
"Paused" is SIGSTOP of the server's process tree: connections hang instead of being
refused, the harder case for a lock held across I/O (nothing fails fast).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from aiohttp import ClientTimeout
from aiohttp.test_utils import TestClient, TestServer
from tests.fixtures.kafka import eventually, read_all

from alert_engine.app import build
from alert_engine.settings import AlertEngineSettings
from opsmesh.db.migrations import apply_all
from opsmesh.events.notifications import NotificationRequested
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import NOTIFICATIONS
from opsmesh_dev.infra.kafka import KafkaServer
from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.infra.redis import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOKEN = "outage-writer-token-0123456789"
# Prometheus' default timeout for sending to an Alertmanager.
CLIENT_TIMEOUT = ClientTimeout(total=10)


@dataclass
class Stack:
    kafka: KafkaServer
    postgres: PostgresServer
    redis: RedisServer


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # The PostgreSQL server's own user must reach its data directory.
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-outage-"))
    workdir.chmod(0o755)
    started: list[Any] = []
    try:
        kafka = KafkaServer(workdir / "kafka")
        kafka.start()
        started.append(kafka)
        postgres = PostgresServer(workdir / "postgres")
        postgres.start()
        started.append(postgres)
        redis = RedisServer(workdir / "redis")
        redis.start()
        started.append(redis)
        asyncio.run(_prepare(kafka.bootstrap, postgres.dsn))
        yield Stack(kafka, postgres, redis)
    finally:
        for server in reversed(started):
            _signal(server, signal.SIGCONT)  # a failed test may leave one paused
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _prepare(bootstrap: str, dsn: str) -> None:
    await ensure_topics({"bootstrap_servers": bootstrap})
    await apply_all(dsn)


def _signal(server: PostgresServer | RedisServer | KafkaServer, sig: int) -> None:
    """Signal a server's whole process tree: its group, then every descendant (each
    PostgreSQL backend runs in a session of its own, out of the group's reach)."""
    process: subprocess.Popen[bytes] | None = server._process
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, sig)  # first the parents: a stopped postmaster forks no more
    for pid in _descendants(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[TestClient]:
    settings = AlertEngineSettings(
        OPSMESH_KAFKA_BOOTSTRAP=stack.kafka.bootstrap,
        OPSMESH_PG_DSN=stack.postgres.dsn,
        OPSMESH_REDIS_URL=stack.redis.url,
        ALERT_ENGINE_API_TOKENS=f"{TOKEN}:write",
        ALERT_ENGINE_GROUP_BY="alertname,service",
        ALERT_ENGINE_GROUP_WAIT="200ms",
        ALERT_ENGINE_GROUP_INTERVAL="1s",
        ALERT_ENGINE_FLUSH_TICK_S=0.05,
        ALERT_ENGINE_SYNC_EVERY_S=0.5,
        # Every flush asks Redis for a token (a generous limit, never reached here).
        ALERT_ENGINE_RECEIVER_RATE_PER_MINUTE=6000,
        ALERT_ENGINE_RECEIVER_BURST=100,
        ALERT_ENGINE_RATE_LIMIT_TIMEOUT_S=0.5,
    )
    client = TestClient(TestServer(build(settings)), timeout=CLIENT_TIMEOUT)
    await client.start_server()
    try:
        await eventually(
            lambda: _ready(client),
            until=lambda checks: bool(checks) and all(v == "ok" for v in checks.values()),
            what="the engine ready",
            timeout_s=60,
        )
        yield client
    finally:
        await client.close()


async def _ready(client: TestClient) -> dict[str, str]:
    response = await client.get("/health/ready")
    checks: dict[str, str] = (await response.json())["checks"]
    return checks


async def _post(client: TestClient, service: str) -> int:
    body = [{"labels": {"alertname": "OutageProbe", "service": service}}]
    response = await client.post(
        "/api/v2/alerts", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return response.status


async def _requests(stack: Stack, service: str) -> list[NotificationRequested]:
    records = await read_all(stack.kafka.bootstrap, NOTIFICATIONS.name)
    decoded = [msgspec.json.decode(r.value, type=NotificationRequested) for r in records]
    return [n for n in decoded if n.common_labels.get("service") == service]


async def _stored(stack: Stack, service: str) -> int:
    async with await psycopg.AsyncConnection.connect(stack.postgres.dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM alert_engine.stored_alerts WHERE labels ->> 'service' = %s",
            (service,),
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def test_postgres_paused_ingest_answers_and_catches_up(
    stack: Stack, engine: TestClient, unique: str
) -> None:
    service = f"pg-down-{unique}"
    _signal(stack.postgres, signal.SIGSTOP)
    try:
        # Within the client's timeout (aiohttp raises past it): no PostgreSQL on this path,
        # and no lock held by the paths that wait on it.
        assert await _post(engine, service) == 200
        assert await _post(engine, f"{service}-2") == 200
        # The listings answer too, within the client's timeout: from this replica's copy.
        response = await engine.get(
            "/api/v2/alerts/groups", params={"filter": f'service="{service}"'}
        )
        assert response.status == 200
        listed = await response.json()
        assert [g["labels"]["service"] for g in listed] == [service]
        checks = await _ready(engine)
        assert checks["postgres"] != "ok", checks
        assert checks["kafka"] == "ok", checks
        assert await _requests(stack, service) == [], "not notified before it is durable"
    finally:
        _signal(stack.postgres, signal.SIGCONT)

    for name in (service, f"{service}-2"):
        await eventually(
            lambda name=name: _stored(stack, name), until=lambda n: n == 1, what="persisted"
        )
        sent = await eventually(
            lambda name=name: _requests(stack, name),
            until=lambda found: len(found) >= 1,
            what=f"the notification of {name}",
        )
        assert [(n.status.value, n.reason.value) for n in sent] == [
            ("firing", "first_notification")
        ]


async def test_redis_paused_ingest_answers_and_notifies_on_in_process_limits(
    stack: Stack, engine: TestClient, unique: str
) -> None:
    service = f"redis-down-{unique}"
    _signal(stack.redis, signal.SIGSTOP)
    try:
        assert await _post(engine, service) == 200
        checks = await _ready(engine)
        assert checks["redis"] != "ok", checks
        assert checks["postgres"] == "ok", checks
        # Notified while Redis is still down: the flush's rate limit decided in process.
        sent = await eventually(
            lambda: _requests(stack, service),
            until=lambda found: len(found) >= 1,
            what="the notification without Redis",
        )
        assert [n.reason.value for n in sent] == ["first_notification"]
        metrics = await (await engine.get("/metrics")).text()
        assert "alert_engine_rate_limit_fallback_total 0.0" not in metrics
        assert "alert_engine_rate_limit_fallback_total" in metrics
    finally:
        _signal(stack.redis, signal.SIGCONT)
    assert await _stored(stack, service) == 1
    await eventually(
        lambda: _ready(engine),
        until=lambda checks: checks.get("redis") == "ok",
        what="readiness green again",
    )
