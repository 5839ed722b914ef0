"""The JSON ingest endpoints when the broker cannot take what they publish (the producer's
buffer full under a burst of remote writes, a leader moving): a retryable 503 with
Retry-After, as ``POST /api/v1/write`` answers, never a 500; nothing counted as accepted.
The producer here is an in-repo fake that fails as aiokafka's does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from metrics_ingest.api.gate import HttpIngest
from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import http_app
from opsmesh.clock import SystemClock
from opsmesh.events.health import HealthReported, HealthStatus
from opsmesh.kafka.producer import Outgoing

TOKEN = "broker-unavailable-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FailingProducer:
    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    async def publish_batched(self, items: Sequence[Outgoing]) -> None:
        raise self.failure


@pytest.fixture(params=[KafkaTimeoutError(), TimeoutError()], ids=["kafka-timeout", "timeout"])
async def client(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[TestClient, CollectorRegistry]]:
    registry = CollectorRegistry()
    http = HttpIngest(
        token=TOKEN,
        limits=IngestLimits(max_samples=50),
        window_sizes=(10.0,),
        rollups=Rollups(WindowConfig((10.0,))),
        clock=SystemClock(),
        registry=registry,
        producer=FailingProducer(request.param),
        pool=None,
    )
    test_client = TestClient(TestServer(http_app(http)))
    await test_client.start_server()
    try:
        yield test_client, registry
    finally:
        await test_client.close()


async def test_metrics_ingest_answers_a_retryable_503(
    client: tuple[TestClient, CollectorRegistry],
) -> None:
    http, registry = client
    sample = {"name": "g", "value": 1.0, "labels": {"service": "shop"}, "sampled_at": time.time()}
    response = await http.post("/api/v1/metrics", json={"samples": [sample]}, headers=AUTH)
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["error"] == "unavailable"
    assert registry.get_sample_value("metrics_ingest_http_requests_total", {"status": "503"}) == 1
    accepted = registry.get_sample_value(
        "metrics_ingest_http_samples_total", {"outcome": "accepted"}
    )
    assert accepted in (None, 0.0)


async def test_event_ingest_answers_a_retryable_503(
    client: tuple[TestClient, CollectorRegistry],
) -> None:
    http, _ = client
    event = HealthReported(
        service="shop", instance="a", status=HealthStatus.PASS, reported_at=time.time()
    )
    body = msgspec.json.encode({"events": [event]})
    response = await http.post(
        "/api/v1/health-reports",
        data=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["error"] == "unavailable"
