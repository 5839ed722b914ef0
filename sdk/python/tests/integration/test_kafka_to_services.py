"""From a real application to a real service: a Starlette app instrumented with the SDK's
ASGI middleware runs an N+1 page over psycopg against real PostgreSQL; the SDK publishes
through librdkafka to real Kafka; query-analyzer's own stage consumes the records and
finds the N+1, and the request metrics on the metrics topic decode as the mesh's events.

Topics are the test's own (the SDK's ``topics`` setting), so nothing else in the session
interferes; the stage is built as query-analyzer's integration tests build it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from opsmesh.catalogue import HTTP_ERROR_RATIO, HTTP_REQUEST_DURATION_SECONDS
from opsmesh.clock import SystemClock
from opsmesh.db.pool import open_pool
from opsmesh.events import MetricSampled, SlowQueryObserved
from opsmesh.kafka import BatchConsumer, ConsumerConfig, DeadLetterPublisher, EventProducer
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import DLQ, Topic
from opsmesh_client.client import Client
from opsmesh_client.integrations import psycopg as psycopg_hooks
from opsmesh_client.integrations.asgi import OpsmeshMiddleware
from opsmesh_client.settings import load
from opsmesh_client.wire import Kind
from opsmesh_dev.infra import Endpoints
from query_analyzer.core.traces import TraceBuffer
from query_analyzer.pipeline.signals import MemorySignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.stats import QueryStats
from tests.fixtures.kafka import eventually, header, read_all

pytestmark = pytest.mark.integration
# Each repeat sleeps so the run passes query-analyzer's N+1 floor (50 ms in all).
AUTHOR = "SELECT name, pg_sleep(0.006) FROM authors WHERE id = %s"


def shop_app(dsn: str, client: Client) -> Starlette:
    async def posts(request: Request) -> JSONResponse:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            psycopg_hooks.instrument(conn, client)
            rows = await (await conn.execute("SELECT id, author_id FROM posts LIMIT 8")).fetchall()
            names = []
            for _, author_id in rows:  # the N+1: one query per post
                names.append(
                    (await (await conn.execute(AUTHOR, (author_id,))).fetchone() or [""])[0]
                )
        return JSONResponse({"authors": names})

    async def boom(request: Request) -> JSONResponse:
        return JSONResponse({"error": "on demand"}, status_code=500)

    app = Starlette(routes=[Route("/posts", posts), Route("/boom/{n}", boom)])
    app.add_middleware(OpsmeshMiddleware, client=client)
    return app


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[Any]:
    opened = await open_pool(infra.pg_dsn, name="sdk-test", max_size=4)
    yield opened
    await opened.close()


async def test_an_n_plus_one_page_becomes_a_finding_through_real_kafka(
    infra: Endpoints, shop_dsn: str, pool: Any, unique: str
) -> None:
    queries = Topic(f"test.sdk.slow.{unique}", 2, "database")
    metrics = Topic(f"test.sdk.metrics.{unique}", 2, "series id")
    health = Topic(f"test.sdk.health.{unique}", 1, "service/instance")
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    await ensure_topics(connection, [queries, metrics, health, DLQ])
    service = f"shop-{unique}"
    client = Client(
        load(
            {},
            service=service,
            kafka=infra.kafka_bootstrap,
            flush_interval_s=0.05,
            topics={
                Kind.SLOW_QUERY: queries.name,
                Kind.METRIC: metrics.name,
                Kind.HEALTH: health.name,
            },
        )
    )
    incoming = f"00-{uuid.uuid4().hex}-{'c' * 16}-01"
    try:
        transport = httpx.ASGITransport(app=shop_app(shop_dsn, client))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
            page = await http.get("/posts", headers={"traceparent": incoming})
            failed = await http.get("/boom/1")
        assert page.status_code == 200
        assert len(page.json()["authors"]) == 8
        assert failed.status_code == 500
        assert await asyncio.to_thread(client.flush, 10.0)
    finally:
        await asyncio.to_thread(client.close)
    assert client.stats()["dropped"] == {}

    producer = EventProducer(connection, source="/test")
    await producer.start()
    registry = CollectorRegistry()
    stage = StatsStage(
        pool=pool,
        stats=QueryStats(pool),
        findings=FindingStore(pool),
        signals=MemorySignalSink(),
        consumer=f"test.sdk.{unique}",
        registry=registry,
        clock=SystemClock(),
        traces=TraceBuffer(settle_s=0.5),
    )
    consumer = BatchConsumer(
        connection=connection,
        config=ConsumerConfig(group_id=f"test.sdk.{unique}", topics=(queries,)),
        event_type=SlowQueryObserved,
        handler=stage,
        dead_letters=DeadLetterPublisher(
            producer, service="test", clock=SystemClock(), registry=registry
        ),
        registry=registry,
        client_id="test",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    database = shop_dsn.rsplit("dbname=", 1)[-1].split(maxsplit=1)[0]
    try:
        found = await eventually(
            lambda: FindingStore(pool).findings(limit=20, database=database),
            until=lambda rows: any(f["kind"] == "n_plus_one" for f in rows),
            what="query-analyzer's N+1 finding from the SDK's records",
        )
    finally:
        stop.set()
        await task
        await producer.stop()
    n_plus_one = next(f for f in found if f["kind"] == "n_plus_one")
    assert n_plus_one["evidence"]["repeats"] == 8

    records = await read_all(infra.kafka_bootstrap, queries.name)
    events = [msgspec.json.decode(r.value, type=SlowQueryObserved) for r in records]
    assert len(events) == 9
    assert {e.trace_id for e in events} == {incoming.split("-")[1]}
    assert {e.application for e in events} == {service}
    assert all("$1" in e.sql for e in events if "authors" in e.sql)  # placeholders, no values
    assert all(header(r, "ce_type") == b"dev.opsmesh.query.slow-observed" for r in records)

    samples = [
        msgspec.json.decode(r.value, type=MetricSampled)
        for r in await read_all(infra.kafka_bootstrap, metrics.name)
    ]
    routes = {s.labels["route"] for s in samples if s.name == HTTP_REQUEST_DURATION_SECONDS.name}
    assert routes == {"/posts", "/boom/{n}"}
    (ratio,) = [s for s in samples if s.name == HTTP_ERROR_RATIO.name]
    assert ratio.value == 0.5
