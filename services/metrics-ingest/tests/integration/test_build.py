"""``build`` is pure wiring with one place to swap what the service is made of."""

from __future__ import annotations

from tests.fixtures.apps import served, until_ready

from metrics_ingest.app import build
from metrics_ingest.bootstrap import Services, bootstrap
from metrics_ingest.settings import MetricsIngestSettings
from opsmesh.runtime import Runtime
from opsmesh_dev.infra import Endpoints


async def test_open_services_is_the_one_place_the_services_are_made(infra: Endpoints) -> None:
    settings = MetricsIngestSettings(
        OPSMESH_KAFKA_BOOTSTRAP=infra.kafka_bootstrap, OPSMESH_PG_DSN=infra.pg_dsn
    )
    made: list[Services] = []

    async def open_services(runtime: Runtime, given: MetricsIngestSettings) -> Services:
        services = await bootstrap(runtime, given)
        # HTTP only, no consumer: what the handlers and workers use comes from here.
        services.stage = services.maintenance = None
        made.append(services)
        return services

    app = build(settings, open_services=open_services)
    assert made == [], "build opens nothing"
    async with served(app) as client:
        assert len(made) == 1
        answer = await client.post("/api/v1/metrics", json={"samples": []})
        assert answer.status == 503, "no token configured: ingest answers that it is not"
        assert (await answer.json())["error"] == "not_configured"
        await until_ready(client)
