"""A slow request's profile, from a real application to query-analyzer's REST API: a
Starlette app instrumented with the SDK's ASGI middleware spends a checkout in one
busy function; the SDK profiles it with pyinstrument (it is past ``profile_slow_ms``) and
publishes it through librdkafka to real Kafka; query-analyzer's profile stage consumes
it into real PostgreSQL, and ``GET /api/v1/profiles`` names that function first. With
``profile_memory`` on, the checkout's 2 MB page buffer is the route's memory peak there.

Topics are the test's own (the SDK's ``topics`` setting), as in test_kafka_to_services.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from opsmesh.clock import SystemClock
from opsmesh.db.pool import open_pool
from opsmesh.events import ProfileRecorded
from opsmesh.kafka import BatchConsumer, ConsumerConfig, DeadLetterPublisher, EventProducer
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import DLQ, Topic
from opsmesh_client.client import Client
from opsmesh_client.integrations.asgi import OpsmeshMiddleware
from opsmesh_client.settings import load
from opsmesh_client.wire import Kind
from opsmesh_dev.infra import Endpoints
from query_analyzer.api import add_routes
from query_analyzer.bootstrap import SERVICES, Services
from query_analyzer.pipeline.profile_stage import ProfileStage
from query_analyzer.pipeline.signals import MemorySignalSink
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.profiles import ProfileStore
from query_analyzer.storage.stats import QueryStats
from tests.fixtures.kafka import eventually, header, read_all

pytestmark = pytest.mark.integration
SLOW_MS = 50.0
PAGE_BYTES = 2_000_000


def compute_totals(busy_s: float) -> int:
    """The checkout's hot spot: busy on the CPU, so the profiler finds it running (the clock
    is read between runs of arithmetic, so the clock's own calls take little of the time)."""
    end, n = time.perf_counter() + busy_s, 0
    while time.perf_counter() < end:
        for _ in range(1000):
            n += 1
    return n


def shop_app(client: Client) -> Starlette:
    async def checkout(request: Request) -> JSONResponse:
        page = bytearray(PAGE_BYTES)  # held while it computes, freed when it answers
        return JSONResponse({"n": compute_totals(3 * SLOW_MS / 1000) + len(page) - PAGE_BYTES})

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[Route("/checkout/{cart}", checkout), Route("/ping", ping)])
    app.add_middleware(OpsmeshMiddleware, client=client)
    return app


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[Any]:
    opened = await open_pool(infra.pg_dsn, name="sdk-profiles", max_size=4)
    yield opened
    await opened.close()


async def test_a_slow_requests_profile_names_its_hot_function_in_query_analyzer(
    infra: Endpoints, pool: Any, unique: str
) -> None:
    profiles = Topic(f"test.sdk.profiles.{unique}", 2, "service/route")
    metrics = Topic(f"test.sdk.pmetrics.{unique}", 1, "series id")
    health = Topic(f"test.sdk.phealth.{unique}", 1, "service/instance")
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    await ensure_topics(connection, [profiles, metrics, health, DLQ])
    service = f"shop-{unique}"
    client = Client(
        load(
            {},
            service=service,
            kafka=infra.kafka_bootstrap,
            flush_interval_s=0.05,
            profile_slow_ms=SLOW_MS,
            profile_interval_ms=2,
            profile_memory=True,
            topics={
                Kind.PROFILE: profiles.name,
                Kind.METRIC: metrics.name,
                Kind.HEALTH: health.name,
            },
        )
    )
    try:
        transport = httpx.ASGITransport(app=shop_app(client))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
            assert (await http.get("/checkout/42")).status_code == 200
            assert (await http.get("/ping")).status_code == 200  # fast: not sent
        assert await asyncio.to_thread(client.flush, 10.0)
    finally:
        await asyncio.to_thread(client.close)
    assert client.stats()["dropped"] == {}

    records = await read_all(infra.kafka_bootstrap, profiles.name)
    assert len(records) == 1
    assert header(records[0], "ce_type") == b"dev.opsmesh.profile.recorded"
    event = msgspec.json.decode(records[0].value, type=ProfileRecorded)
    assert event.route == "/checkout/{cart}"
    assert event.reason == "slow"
    assert records[0].key == f"{service}//checkout/{{cart}}".encode()

    producer = EventProducer(connection, source="/test")
    await producer.start()
    registry = CollectorRegistry()
    stage = ProfileStage(
        pool=pool,
        profiles=ProfileStore(pool),
        consumer=f"test.sdk.profiles.{unique}",
        registry=registry,
        signals=MemorySignalSink(),
        clock=SystemClock(),
    )
    consumer = BatchConsumer(
        connection=connection,
        config=ConsumerConfig(group_id=f"test.sdk.profiles.{unique}", topics=(profiles,)),
        event_type=ProfileRecorded,
        handler=stage,
        dead_letters=DeadLetterPublisher(
            producer, service="test", clock=SystemClock(), registry=registry
        ),
        registry=registry,
        client_id="test",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await eventually(
            lambda: ProfileStore(pool).routes(service=service, limit=5, functions=5),
            until=lambda rows: len(rows) == 1,
            what="query-analyzer's profile of the checkout route",
        )
    finally:
        stop.set()
        await task
        await producer.stop()

    app = web.Application()
    app[SERVICES] = Services(
        stats=QueryStats(pool),
        findings=FindingStore(pool),
        stage=None,
        analyzer=None,
        profiles=ProfileStore(pool),
    )
    add_routes(app)
    async with TestClient(TestServer(app)) as http_api:
        answer = await http_api.get("/api/v1/profiles", params={"service": service})
        assert answer.status == 200
        (route,) = await answer.json()
        bad = await http_api.get("/api/v1/profiles", params={"functions": "0"})
        assert bad.status == 400
    assert route["route"] == "/checkout/{cart}"
    assert route["profiles"] == 1
    assert route["slow_profiles"] == 1
    assert route["max_ms"] >= 3 * SLOW_MS
    assert route["memory_profiles"] == 1
    assert PAGE_BYTES <= route["memory_peak_max_bytes"] < 2 * PAGE_BYTES
    assert route["memory_peak_mean_bytes"] == route["memory_peak_max_bytes"]
    assert route["memory_net_mean_bytes"] < PAGE_BYTES / 10  # the buffer was freed
    hottest = route["functions"][0]
    assert hottest["function"] == "compute_totals"
    assert hottest["self_share"] > 0.5
