"""The REST API over real PostgreSQL: top queries, fingerprints over time, one
fingerprint, findings, recommendations, the OpenAPI document, and clear 4xx answers to
bad input."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from opsmesh.db.pool import open_pool
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.consumer import Received
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock
from query_analyzer.api import add_routes
from query_analyzer.api.openapi import DOCUMENT
from query_analyzer.bootstrap import SERVICES, Services
from query_analyzer.core.aggregate import QueryAggregate
from query_analyzer.core.fingerprint import fingerprint
from query_analyzer.core.sketch import Sketch
from query_analyzer.pipeline.signals import MemorySignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.profiles import ProfileStore
from query_analyzer.storage.stats import QueryStats

pytestmark = pytest.mark.integration

SQL = "SELECT * FROM carts WHERE user_id = {}"


class _Message:
    def __init__(self, topic: str, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset


@pytest.fixture
async def client(infra: Endpoints, unique: str) -> AsyncIterator[tuple[TestClient[Any, Any], str]]:
    pool = await open_pool(infra.pg_dsn, name="qa-api", max_size=2)
    database = f"db_{unique}"
    clock = FakeClock()
    stage = StatsStage(
        pool=pool,
        stats=QueryStats(pool),
        findings=FindingStore(pool),
        signals=MemorySignalSink(),
        consumer=f"api.{unique}",
        registry=CollectorRegistry(),
        clock=clock,
    )
    trace = {"trace_id": f"t{unique}", "parent_span_id": "p"}
    events = [
        SlowQueryObserved(
            sql="SELECT 1 FROM users",
            duration_ms=3,
            database=database,
            application="a",
            started_at=clock.now(),
            **trace,
        )
    ] + [
        SlowQueryObserved(
            sql=SQL.format(i),
            duration_ms=20,
            database=database,
            application="a",
            started_at=clock.now() + i,
            **trace,
        )
        for i in range(5)
    ]
    topic = f"api.{uuid.uuid4().hex[:6]}"
    await stage.handle([Received(e, _Message(topic, i)) for i, e in enumerate(events)])
    clock.advance(10)  # the request went quiet: its trace is read for N+1 runs
    await stage.handle([])
    app = web.Application()
    app[SERVICES] = Services(
        stats=QueryStats(pool),
        findings=FindingStore(pool),
        stage=None,
        analyzer=None,
        profiles=ProfileStore(pool),
    )
    add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, database
    await pool.close()


async def test_queries_findings_and_one_fingerprint(
    client: tuple[TestClient[Any, Any], str],
) -> None:
    http, database = client
    response = await http.get("/api/v1/queries", params={"database": database, "limit": "5"})
    assert response.status == 200
    top = await response.json()
    assert [q["calls"] for q in top] == [5, 1]
    assert top[0]["p95_ms"] == pytest.approx(20, rel=0.02)

    fp = fingerprint(SQL.format(1)).value
    response = await http.get(f"/api/v1/queries/{fp}")
    assert response.status == 200
    detail = await response.json()
    assert detail["fingerprint"] == fp
    mine = [s for s in detail["stats"] if s["database"] == database]
    assert mine[0]["sample_sql"].startswith("SELECT * FROM carts WHERE user_id = ")
    assert [f["kind"] for f in detail["findings"] if f["database"] == database] == ["n_plus_one"]

    response = await http.get(
        "/api/v1/findings", params={"kind": "n_plus_one", "database": database}
    )
    findings = await response.json()
    assert len(findings) == 1
    assert findings[0]["evidence"]["repeats"] == 5

    response = await http.get("/api/v1/recommendations", params={"database": database})
    assert response.status == 200
    assert await response.json() == []


# A multiple of 120 s: windows of 60 s pair up into buckets of 120 s.
T0 = 1_700_000_400.0
TREND_SQL = "SELECT * FROM trend_t WHERE id = {}"


async def test_a_fingerprints_windows_come_back_as_buckets_with_their_percentiles(
    client: tuple[TestClient[Any, Any], str], infra: Endpoints
) -> None:
    http, database = client
    fp = fingerprint(TREND_SQL.format(1))
    # Window k (60 s each) holds k + 1 calls of 10 * (k + 1) ms.
    aggregates = []
    for k in range(6):
        aggregate = QueryAggregate(fp, database, window_start=T0 + 60 * k)
        for call in range(k + 1):
            aggregate.add(10.0 * (k + 1), 1, T0 + 60 * k + call, TREND_SQL.format(call))
        aggregates.append(aggregate)
    pool = await open_pool(infra.pg_dsn, name="qa-windows", max_size=1)
    try:
        async with pool.connection() as conn, conn.cursor() as cur:
            await QueryStats(pool).merge(cur, aggregates)
    finally:
        await pool.close()
    asked = {"fingerprint": fp.value, "database": database}

    response = await http.get(
        "/api/v1/queries/windows", params={**asked, "step": "120", "buckets": "2"}
    )
    assert response.status == 200
    rows = await response.json()
    schema = DOCUMENT["paths"]["/api/v1/queries/windows"]["get"]["responses"]["200"]
    jsonschema.validate(rows, schema["content"]["application/json"]["schema"])
    # The last two buckets up to the newest window, oldest first.
    assert [(r["start"], r["calls"], r["step_s"]) for r in rows] == [
        (T0 + 120, 3 + 4, 120.0),
        (T0 + 240, 5 + 6, 120.0),
    ]
    assert rows[1]["p95_ms"] == pytest.approx(60, rel=0.02)
    assert rows[0]["p50_ms"] == pytest.approx(40, rel=0.02)
    assert rows[1]["total_ms"] == pytest.approx(5 * 50 + 6 * 60)
    assert rows[1]["mean_ms"] == pytest.approx((5 * 50 + 6 * 60) / 11)
    assert (rows[1]["max_ms"], rows[0]["fingerprint"]) == (60, fp.value)

    # By default: the last day by the hour, here one bucket holding every window.
    response = await http.get("/api/v1/queries/windows", params=asked)
    [hour] = await response.json()
    assert (hour["calls"], hour["start"] % 3600, hour["step_s"]) == (21, 0, 3600.0)

    response = await http.get(
        "/api/v1/queries/windows", params={**asked, "step": "60", "since": str(T0 + 200)}
    )
    assert [r["start"] for r in await response.json()] == [T0 + 240, T0 + 300]

    other = fingerprint("SELECT 1 FROM users").value  # the fixture's, in the same database
    response = await http.get(
        "/api/v1/queries/windows",
        params=[("fingerprint", fp.value), ("fingerprint", other), ("database", database)],
    )
    assert {r["fingerprint"] for r in await response.json()} == {fp.value, other}
    response = await http.get(
        "/api/v1/queries/windows", params={"fingerprint": "0" * 16, "database": database}
    )
    assert await response.json() == []


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/v1/queries?limit=abc", 400, "limit must be an integer"),
        ("/api/v1/queries?limit=0", 400, "limit must be between 1 and 500"),
        ("/api/v1/queries?since=yesterday", 400, "since must be epoch seconds"),
        ("/api/v1/queries/not-a-fingerprint", 400, "16 lowercase hex"),
        ("/api/v1/queries/windows", 400, "give 1 to 100 fingerprint parameters"),
        ("/api/v1/queries/windows?" + "&".join(["fingerprint=" + "a" * 16] * 101), 400, "1 to 100"),
        ("/api/v1/queries/windows?fingerprint=ABC", 400, "16 lowercase hex"),
        ("/api/v1/queries/windows?fingerprint=" + "a" * 16 + "&step=5", 400, "step must be"),
        ("/api/v1/queries/windows?fingerprint=" + "a" * 16 + "&buckets=x", 400, "integer"),
        ("/api/v1/queries/windows?fingerprint=" + "a" * 16 + "&since=-1", 400, "since must"),
        ("/api/v1/queries/0000000000000000", 404, "no statistics"),
        ("/api/v1/findings?kind=bogus", 400, "kind must be one of"),
        ("/api/v1/recommendations?actionable=maybe", 400, "actionable must be true or false"),
    ],
)
async def test_bad_input_gets_a_clear_4xx(
    client: tuple[TestClient[Any, Any], str], path: str, status: int, message: str
) -> None:
    http, _ = client
    response = await http.get(path)
    assert response.status == status
    assert message in (await response.json())["error"]


async def test_the_openapi_document_describes_every_route(
    client: tuple[TestClient[Any, Any], str],
) -> None:
    http, _ = client
    response = await http.get("/api/v1/openapi.json")
    document = await response.json()
    assert document == DOCUMENT
    assert document["openapi"].startswith("3.")
    served = {r.resource.canonical for r in http.app.router.routes() if r.resource is not None}
    # The document also describes the service kit's probes, which init_app adds.
    assert served | {"/health/live", "/health/ready", "/metrics"} == set(document["paths"])


async def test_a_damaged_stored_sketch_neither_fails_reads_nor_stalls_merges(
    client: tuple[TestClient[Any, Any], str], infra: Endpoints
) -> None:
    http, database = client
    fp = fingerprint(SQL.format(1))
    pool = await open_pool(infra.pg_dsn, name="qa-damage", max_size=1)
    try:
        async with pool.connection() as conn:
            damaged = await conn.execute(
                "UPDATE query_analyzer.query_windows SET sketch = %s::jsonb"
                " WHERE fingerprint = %s AND database = %s",
                ('{"accuracy": 0.01, "buckets": {"x": "many"}}', fp.value, database),
            )
            assert damaged.rowcount >= 1

        response = await http.get("/api/v1/queries", params={"database": database})
        assert response.status == 200
        top = {q["fingerprint"]: q for q in await response.json()}
        assert top[fp.value]["calls"] == 5  # totals come from the row, not the sketch
        assert top[fp.value]["p95_ms"] is None
        response = await http.get(f"/api/v1/queries/{fp.value}")
        assert response.status == 200

        row = await _window_row(pool, fp.value, database)
        later = QueryAggregate(fp, database, window_start=row[0])
        later.add(40.0, 1, row[0] + 1, SQL.format(9))
        async with pool.connection() as conn, conn.cursor() as cur:
            await QueryStats(pool).merge(cur, [later])
        merged = await _window_row(pool, fp.value, database)
        assert merged[1] == 6
        assert Sketch.from_json(merged[2]).count == 1  # the batch's sketch replaced it
    finally:
        await pool.close()


async def _window_row(pool: Any, fp: str, database: str) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT extract(epoch FROM window_start)::float8, calls, sketch"
            " FROM query_analyzer.query_windows WHERE fingerprint = %s AND database = %s",
            (fp, database),
        )
        rows = await cur.fetchall()
    assert len(rows) == 1
    return tuple(rows[0])
