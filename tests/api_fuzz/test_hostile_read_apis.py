"""The hostile-input corpus of the read-only APIs (query-analyzer, health-aggregator,
notifier): every malformed parameter, path and header is a 4xx with a message (never a
5xx), and data sent afterwards through Kafka still shows up in the same endpoints."""

from __future__ import annotations

import time
import uuid
from typing import Any

import aiohttp
import pytest

from opsmesh.events import HealthReported, HealthStatus, SlowQueryObserved
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import HEALTH, SLOW_QUERIES
from tests.api_fuzz.conftest import FOREIGN_TOKEN, FuzzMesh
from tests.api_fuzz.hostile import Probe, auth_abuse, gzip_bomb, refused
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.integration

# Values every string parameter gets, percent-encoded as sent.
HOSTILE_TEXT = {
    "NUL": "a%00b",
    "lone surrogate": "%ED%A0%80",
    "invalid UTF-8": "%FF%FE",
    "bad percent-encoding": "%ZZ",
    "9 KB": "a" * 9000,
}
HOSTILE_NUMBERS = ["nan", "inf", "-inf", "1e400", "-1", "9" * 5000, "0x10", ""]


def _common(path: str) -> list[Probe]:
    """Methods, bodies and headers no read endpoint takes."""
    return [
        Probe("POST to a read endpoint", "POST", path, b"{}", status=405),
        Probe("DELETE", "DELETE", path, status=405),
        Probe(
            "gzip bomb on a read",
            "PUT",
            path,
            gzip_bomb(16 * 1024 * 1024),
            {"Content-Encoding": "gzip"},
            405,
        ),
        *[p for p in auth_abuse("GET", path, None, 200) if p.name == "auth: 16 KB header"],
    ]


def _query_analyzer() -> list[Probe]:
    probes: list[Probe] = []
    for path in ("/api/v1/queries", "/api/v1/findings", "/api/v1/recommendations"):
        probes += [
            Probe(f"{path} limit={v[:12]}", "GET", f"{path}?limit={v}", status=400)
            for v in [*HOSTILE_NUMBERS, "0", "501"]
        ]
        # A database is any name: undecodable bytes arrive as U+FFFD and name no database
        # (200, empty); NUL, which PostgreSQL cannot compare, and overlong names are 400s.
        probes.append(Probe(f"{path} NUL database", "GET", f"{path}?database=a%00b", status=400))
        probes.append(
            Probe(f"{path} long database", "GET", f"{path}?database={'d' * 201}", status=400)
        )
        probes += _common(path)
    probes += [
        Probe(f"since={v[:12]}", "GET", f"/api/v1/queries?since={v}", status=400)
        for v in ["nan", "inf", "1e400", "-1", "1e20", "x"]
    ]
    probes += [
        Probe("kind unknown", "GET", "/api/v1/findings?kind=%00", status=400),
        Probe("actionable junk", "GET", "/api/v1/recommendations?actionable=maybe", status=400),
        Probe("fingerprint uppercase", "GET", "/api/v1/queries/ABCDEF0123456789", status=400),
        Probe("fingerprint NUL", "GET", "/api/v1/queries/0123456789abcde%00", status=400),
        Probe("fingerprint traversal", "GET", "/api/v1/queries/..%2F..%2Fetc%2Fpasswd", status=400),
        Probe("fingerprint surrogate", "GET", "/api/v1/queries/%ED%A0%80", status=400),
        Probe("unknown fingerprint", "GET", "/api/v1/queries/0123456789abcdef", status=404),
        Probe("path traversal", "GET", "/api/v1/../../etc/passwd", status=404),
    ]
    return probes


def _health_aggregator() -> list[Probe]:
    probes: list[Probe] = []
    for template in ("/health/check/{}/", "/api/v1/services/{}"):
        probes += [
            Probe(f"{template} {name}", "GET", template.format(v), status=404)
            for name, v in {**HOSTILE_TEXT, "traversal": "..%2F..%2Fetc%2Fpasswd"}.items()
            if name != "9 KB"
        ]
        probes.append(Probe(f"{template} 9 KB", "GET", template.format("a" * 9000), status=400))
        probes += _common(template.format("x"))
    probes += _common("/health/")
    probes.append(Probe("path traversal", "GET", "/health/../../etc/passwd", status=404))
    return probes


def _notifier() -> list[Probe]:
    return [
        *_common("/api/v1/receivers"),
        Probe("unknown path", "GET", "/api/v1/receivers/..%2Fsecrets", status=404),
        Probe("NUL path", "GET", "/api/v1/receivers%00", status=404),
    ]


async def _publish(fuzz_mesh: FuzzMesh, item: Outgoing) -> None:
    producer = EventProducer({"bootstrap_servers": fuzz_mesh.kafka_bootstrap}, source="/tests")
    await producer.start()
    try:
        await producer.publish(item)
    finally:
        await producer.stop()


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, headers={"Authorization": f"Bearer {FOREIGN_TOKEN}"}) as r:
        return await r.json() if r.status == 200 else None


async def test_query_analyzer_refuses_hostile_requests_and_keeps_analysing(
    fuzz_mesh: FuzzMesh,
) -> None:
    base = fuzz_mesh.url("query-analyzer")
    problems = await refused(base, _query_analyzer())
    assert problems == [], "\n".join(problems)

    database = f"after_hostile_{uuid.uuid4().hex[:8]}"
    event = SlowQueryObserved(
        sql="SELECT * FROM orders WHERE id = 42",
        duration_ms=250.0,
        database=database,
        application="hostile",
        started_at=time.time(),
    )
    await _publish(fuzz_mesh, Outgoing(SLOW_QUERIES, database, event))
    async with aiohttp.ClientSession() as session:
        rows = await eventually(
            lambda: _get(session, f"{base}/api/v1/queries?database={database}"),
            until=bool,
            timeout_s=30,
            what="the slow query's statistics",
        )
    assert rows[0]["calls"] == 1


async def test_health_aggregator_refuses_hostile_requests_and_keeps_aggregating(
    fuzz_mesh: FuzzMesh,
) -> None:
    base = fuzz_mesh.url("health-aggregator")
    problems = await refused(base, _health_aggregator())
    assert problems == [], "\n".join(problems)

    service = f"after-hostile-{uuid.uuid4().hex[:8]}"
    event = HealthReported(
        service=service, instance="i-1", status=HealthStatus.PASS, reported_at=time.time()
    )
    await _publish(fuzz_mesh, Outgoing(HEALTH, f"{service}/i-1", event))
    async with aiohttp.ClientSession() as session:
        detail = await eventually(
            lambda: _get(session, f"{base}/api/v1/services/{service}"),
            until=bool,
            timeout_s=30,
            what="the reported service",
        )
    assert detail["status"] == "pass"


async def test_notifier_refuses_hostile_requests(fuzz_mesh: FuzzMesh) -> None:
    problems = await refused(fuzz_mesh.url("notifier"), _notifier())
    assert problems == [], "\n".join(problems)
