"""Each framework and driver integration, driven for real against real PostgreSQL: the
events are kept by the in-memory transport (the Kafka path is proven once, in
``test_kafka_to_services.py``). Every page runs one query for a list and one per row (an
N+1), so each test checks the queries hang under the request's span, in order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
import sqlalchemy
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import opsmesh_client
from opsmesh_client.client import Client
from opsmesh_client.health import Result, django_database
from opsmesh_client.integrations import aiohttp as aiohttp_hooks
from opsmesh_client.integrations import asyncpg as asyncpg_hooks
from opsmesh_client.integrations import sqlalchemy as sqlalchemy_hooks
from opsmesh_client.settings import load
from opsmesh_client.testing import MemoryTransport, MemoryTransports
from opsmesh_client.wire import Kind, Record

pytestmark = pytest.mark.integration
TRACE = "1" * 32
INCOMING = f"00-{TRACE}-{'2' * 16}-01"


def memory_client() -> tuple[Client, MemoryTransport]:
    made = MemoryTransports()
    client = Client(load({}, service="shop", kafka="unused:1"), transport=made, start=False)
    return client, made.transport


def database_of(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])


def assert_one_request_of_queries(queries: list[Record], count: int, database: str) -> None:
    assert len(queries) == count
    bodies = [q.body for q in queries]
    assert {b["trace_id"] for b in bodies} == {TRACE}
    (parent,) = {b["parent_span_id"] for b in bodies}
    assert parent != "2" * 16  # the request's own span, a child of the caller's
    assert len({b["span_id"] for b in bodies}) == count
    assert {b["database"] for b in bodies} == {database}
    assert all(b["duration_ms"] > 0 for b in bodies)


def route_of_duration(client: Client, transport: MemoryTransport) -> set[str]:
    client.flush()
    return {
        r.body["labels"]["route"]
        for r in transport.of(Kind.METRIC)
        if r.body["name"] == "http_request_duration_seconds"
    }


async def test_aiohttp_middleware_and_asyncpg_query_logger(shop_dsn: str) -> None:
    client, transport = memory_client()

    async def author(request: web.Request) -> web.Response:
        parts = _url_parts(shop_dsn)
        conn = await asyncpg.connect(
            host=parts["host"],
            port=parts["port"],
            user=parts["username"],
            password=parts["password"],
            database=parts["database"],
        )
        try:
            asyncpg_hooks.instrument(conn, client)
            posts = await conn.fetch("SELECT id, author_id FROM posts ORDER BY id LIMIT 5")
            for post in posts:
                await conn.fetchval("SELECT name FROM authors WHERE id = $1", post["author_id"])
        finally:
            await conn.close()
        return web.json_response({"posts": len(posts), "id": request.match_info["id"]})

    app = web.Application(middlewares=[aiohttp_hooks.middleware(client)])
    app.router.add_get("/authors/{id}", author)
    async with TestClient(TestServer(app)) as http:
        answer = await http.get("/authors/7", headers={"traceparent": INCOMING})
        assert answer.status == 200
        assert (await http.get("/nowhere")).status == 404
        client.health.add("database", lambda: Result("fail", "down"))
        client.health.run()
        assert (await http.get("/health/live")).status == 200
        ready = await http.get("/health/ready")
        assert ready.status == 503
        assert (await ready.json())["failing"] == ["database"]
    queries = transport.of(Kind.SLOW_QUERY) if client.flush() else []
    assert_one_request_of_queries(queries, 6, database_of(shop_dsn))
    assert queries[1].body["sql"] == "SELECT name FROM authors WHERE id = $1"
    assert route_of_duration(client, transport) == {"/authors/{id}", "<unmatched>"}


def test_sqlalchemy_engine_events(shop_dsn: str) -> None:
    client, transport = memory_client()
    url = sqlalchemy.engine.make_url("postgresql+psycopg://").set(
        **{k: v for k, v in _url_parts(shop_dsn).items() if v}
    )
    engine = sqlalchemy.create_engine(url)
    sqlalchemy_hooks.instrument(engine, client)
    from opsmesh_client import trace  # noqa: PLC0415 - the test opens a request span itself

    token = trace.enter(trace.request_context(INCOMING))
    try:
        with engine.connect() as conn:
            ids = conn.execute(sqlalchemy.text("SELECT author_id FROM posts LIMIT 4")).scalars()
            for author_id in list(ids):
                conn.execute(
                    sqlalchemy.text("SELECT name FROM authors WHERE id = :id"), {"id": author_id}
                )
    finally:
        trace.leave(token)
        engine.dispose()
    client.flush()
    queries = [
        q
        for q in transport.of(Kind.SLOW_QUERY)
        if "authors" in q.body["sql"] or "posts" in q.body["sql"]
    ]
    assert_one_request_of_queries(queries, 5, database_of(shop_dsn))
    assert queries[1].body["sql"] == "SELECT name FROM authors WHERE id = $1"
    assert queries[1].body["rows"] == 1


def _url_parts(dsn: str) -> dict[str, Any]:
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    return {
        "host": parts.get("host"),
        "port": int(parts["port"]) if parts.get("port") else None,
        "username": parts.get("user"),
        "password": parts.get("password"),
        "database": parts.get("dbname"),
    }


@pytest.fixture
def django_shop(shop_dsn: str) -> Iterator[MemoryTransport]:
    """Django configured once for this process, on the shop database."""
    import django  # noqa: PLC0415 - configured here, not at collection
    from django.conf import settings  # noqa: PLC0415

    if not settings.configured:
        parts = _url_parts(shop_dsn)
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF="sdk.python.tests.integration.django_urls",
            MIDDLEWARE=["opsmesh_client.integrations.django.OpsmeshMiddleware"],
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": parts["database"],
                    "HOST": parts["host"],
                    "PORT": parts["port"],
                    "USER": parts["username"],
                    "PASSWORD": parts["password"] or "",
                }
            },
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
    made = MemoryTransports()
    opsmesh_client.init(service="shop", kafka="unused:1", transport=made, enabled=True)
    try:
        yield made.transport
    finally:
        opsmesh_client.shutdown()
        from django.db import connections  # noqa: PLC0415

        connections.close_all()


def test_django_middleware_and_execute_wrapper(django_shop: MemoryTransport, shop_dsn: str) -> None:
    from django.test import Client as DjangoClient  # noqa: PLC0415

    http = DjangoClient(raise_request_exception=False)
    answer = http.get("/posts/3/", headers={"traceparent": INCOMING})
    assert answer.status_code == 200
    assert answer.json() == {"authors": ["author 1", "author 2", "author 3"]}
    assert http.get("/fail/").status_code == 500
    client = opsmesh_client.get_client()
    assert client is not None
    client.health.add("database", django_database())  # SELECT 1 on the "default" alias
    client.health.run()
    ready = http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["status"] == "pass"
    assert django_database("missing")().status == "fail"  # an alias Django does not have
    assert http.get("/health/live").json() == {"status": "pass"}
    client.flush()
    traced = [q for q in django_shop.of(Kind.SLOW_QUERY) if q.body["trace_id"] == TRACE]
    assert_one_request_of_queries(traced, 4, database_of(shop_dsn))
    assert traced[1].body["sql"] == "SELECT name FROM authors WHERE id = $1"
    routes = route_of_duration(client, django_shop)
    assert routes == {"posts/<int:limit>/", "fail/"}
    ratio = next(r for r in django_shop.of(Kind.METRIC) if r.body["name"] == "http_error_ratio")
    assert ratio.body["value"] == 0.5
