"""``build`` is pure wiring with one place to swap what the service is made of."""

from __future__ import annotations

from tests.fixtures.apps import served, until_ready

from opsmesh.runtime import Runtime
from opsmesh_dev.infra import Endpoints
from query_analyzer.app import build
from query_analyzer.bootstrap import Services, bootstrap
from query_analyzer.settings import QueryAnalyzerSettings


async def test_open_services_is_the_one_place_the_services_are_made(infra: Endpoints) -> None:
    settings = QueryAnalyzerSettings(
        OPSMESH_KAFKA_BOOTSTRAP=infra.kafka_bootstrap, OPSMESH_PG_DSN=infra.pg_dsn
    )
    made: list[Services] = []

    async def open_services(runtime: Runtime, given: QueryAnalyzerSettings) -> Services:
        services = await bootstrap(runtime, given)
        # A read-only service: what the handlers and workers use comes from here.
        services.stage = services.analyzer = None
        made.append(services)
        return services

    app = build(settings, open_services=open_services)
    assert made == [], "build opens nothing"
    async with served(app) as client:
        assert len(made) == 1
        answer = await client.get("/api/v1/queries?database=nowhere")
        assert (answer.status, await answer.json()) == (200, [])
        await until_ready(client)
