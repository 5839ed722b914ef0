"""``build`` is pure wiring with one place to swap what the service is made of."""

from __future__ import annotations

from collections.abc import Sequence

from tests.fixtures.apps import served, until_ready

from health_aggregator.app import build
from health_aggregator.bootstrap import Services, bootstrap
from health_aggregator.core.probes import ProbeSpec
from health_aggregator.settings import HealthAggregatorSettings
from opsmesh.runtime import Runtime
from opsmesh_dev.infra import Endpoints


async def test_open_services_is_the_one_place_the_services_are_made(infra: Endpoints) -> None:
    settings = HealthAggregatorSettings(
        OPSMESH_KAFKA_BOOTSTRAP=infra.kafka_bootstrap, OPSMESH_PG_DSN=infra.pg_dsn
    )
    made: list[Services] = []

    async def open_services(
        runtime: Runtime, given: HealthAggregatorSettings, probes: Sequence[ProbeSpec]
    ) -> Services:
        services = await bootstrap(runtime, given, probes)
        services.version = "swapped"  # what the handlers answer comes from here
        made.append(services)
        return services

    app = build(settings, open_services=open_services)
    assert made == [], "build opens nothing"
    async with served(app) as client:
        live = await (await client.get("/health/live/")).json(content_type=None)
        assert live == {"status": "pass", "version": "swapped"}
        assert len(made) == 1
        await until_ready(client, "/health/ready/")
