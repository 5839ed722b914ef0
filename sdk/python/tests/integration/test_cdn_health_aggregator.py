"""The seam between health-aggregator and the SDK's CDN routing, from the real upstream.

health-aggregator's own HTTP probe (``run_probe``) checks each provider's canary asset as
the mesh configures it (``service`` the CDN service, ``check`` the provider's name); its
health stage stores the result in the session's PostgreSQL, and its own API routes serve
it. The SDK's ``AggregatorHealth`` polls that API in its thread, and ``cdn_url`` fails
over when a canary breaks and back when it recovers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from health_aggregator.api import routes
from health_aggregator.bootstrap import SERVICES, Services
from health_aggregator.core.checks import OwnedChecks
from health_aggregator.core.policy import Policy
from health_aggregator.core.probes import ProbeKind, ProbeSpec, to_report
from health_aggregator.pipeline.health_stage import HealthStage
from health_aggregator.pipeline.probes import run_probe
from health_aggregator.pipeline.view import HealthView
from health_aggregator.storage.checks import CheckStore, partition_of
from opsmesh.clock import SystemClock
from opsmesh.db.pool import open_pool
from opsmesh.kafka.producer import Outgoing
from opsmesh_client.cdn import AggregatorHealth, ImageTransform, cdn_url
from opsmesh_client.cdn.urls import router_from_config
from opsmesh_dev.infra import Endpoints
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.integration

PROVIDERS = ("cloudflare", "fastly")


@dataclass
class FakeProducer:  # the stage's status-change signals go to Kafka; not this test's seam
    sent: list[Outgoing] = field(default_factory=list)

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        self.sent.extend(items)


@dataclass
class Msg:
    partition: int


@dataclass
class Rec:
    event: object
    message: Msg
    trace: None = None


@pytest.fixture
async def store(infra: Endpoints) -> AsyncIterator[CheckStore]:
    pool = await open_pool(infra.pg_dsn, name="tests-sdk-cdn")
    try:
        yield CheckStore(pool)
    finally:
        await pool.close()


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def _until(what: str, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async def probe() -> bool:
        return condition()

    await eventually(probe, until=bool, timeout_s=timeout_s, what=what)


async def test_cdn_url_fails_over_on_health_aggregators_canary_probes(store, unique):
    service = f"cdn-{unique}"
    broken: set[str] = set()

    async def canary(request: web.Request) -> web.Response:
        if request.match_info["provider"] in broken:
            return web.Response(status=503, text="edge error")
        return web.Response(body=b"\x89PNG canary", content_type="image/png")

    canary_app = web.Application()
    canary_app.router.add_get("/canary/{provider}.png", canary)
    edges = await _serve(canary_app)

    stage = HealthStage(
        owned=OwnedChecks(),
        store=store,
        producer=FakeProducer(),
        clock=SystemClock(),
        registry=CollectorRegistry(),
    )
    await stage.on_assigned(set())
    view = HealthView(
        store,
        clock=SystemClock(),
        policies={},
        default_policy=Policy.ALL,
        service_id="agg",
        version="t",
    )
    ha_app = web.Application()
    ha_app[SERVICES] = Services(
        store=store,
        view=view,
        stage=stage,
        probes=None,
        readiness=list,
        version="t",
        history_limit=10,
    )
    routes(10)(ha_app)
    aggregator = await _serve(ha_app)

    specs = [
        ProbeSpec(
            service=service,
            check=name,
            kind=ProbeKind.HTTP,
            target=str(edges.make_url(f"/canary/{name}.png")),
            interval_s=1.0,
            timeout_s=1.0,
        )
        for name in PROVIDERS
    ]

    async def probe_round() -> None:  # what the aggregator's probe loop does each interval
        for spec in specs:
            report = to_report(spec, await run_probe(spec), time.time())
            await stage.handle([Rec(report, Msg(partition_of(spec.service, spec.instance)))])
        await view.refresh()

    health = AggregatorHealth(
        str(aggregator.make_url("/")), service=service, interval_s=0.1, timeout_s=2.0
    )
    router = router_from_config(
        {
            "providers": {
                name: {
                    "type": "generic",
                    "base_url": f"https://{name}.example",
                    "purge_url": f"https://{name}.example/purge",
                }
                for name in PROVIDERS
            },
            "routing": {
                "default": ["cloudflare", "fastly"],
                "regions": {"eu": ["fastly"]},
                "countries": {"DE": "eu"},
            },
        },
        env={},
    )
    router.health = health
    health.start()
    try:
        await probe_round()
        await _until(
            "both providers healthy", lambda: health.states == dict.fromkeys(PROVIDERS, True)
        )
        assert cdn_url("img/logo.png", region="DE", width=200, router=router) == (
            "https://fastly.example/img/logo.png?width=200"
        )

        broken.add("fastly")
        await probe_round()
        await _until("fastly seen failing", lambda: health.healthy("fastly") is False)
        assert cdn_url("img/logo.png", region="DE", router=router) == (
            "https://cloudflare.example/img/logo.png"
        )
        assert router.url(
            "img/logo.png", region="DE", transform=ImageTransform(width=64)
        ).startswith("https://cloudflare.example/")

        broken.clear()
        await probe_round()
        await _until("fastly back", lambda: health.healthy("fastly") is True)
        assert router.choose("DE").name == "fastly"

        await aggregator.close()  # the aggregator goes away: the last known state stands
        await _until("a poll that finds it gone", lambda: not health.reachable)
        assert health.states == dict.fromkeys(PROVIDERS, True)
        assert router.choose("DE").name == "fastly"
    finally:
        health.stop()
        await aggregator.close()
        await edges.close()
