"""A broker that does not take a request's records is a 503 with Retry-After (the client
sends them again), never a 500, on every JSON ingest endpoint; nothing is counted as
accepted, and the next request goes through once the broker is back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from metrics_ingest.api.gate import RETRY_AFTER_S
from metrics_ingest.testing import MemoryPublisher, http_app, http_ingest
from opsmesh.events import HealthReported
from opsmesh.events.health import HealthStatus
from opsmesh.kafka.codec import encode

TOKEN = "ingest-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, MemoryPublisher, CollectorRegistry]]:
    publisher = MemoryPublisher()
    registry = CollectorRegistry()
    async with TestClient(
        TestServer(http_app(http_ingest(TOKEN, publisher, registry)))
    ) as test_client:
        yield test_client, publisher, registry


SAMPLE = {"name": "requests_total", "kind": "counter", "value": 1.0, "labels": {"service": "a"}}


async def test_metrics_answer_503_with_retry_after_while_the_broker_does_not_take_them(
    client: tuple[TestClient, MemoryPublisher, CollectorRegistry],
) -> None:
    http, publisher, registry = client
    publisher.failure = KafkaTimeoutError()
    body = {"samples": [{**SAMPLE, "sampled_at": time.time()}]}
    answer = await http.post("/api/v1/metrics", json=body, headers=HEADERS)
    assert answer.status == 503
    assert answer.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert (await answer.json())["error"] == "unavailable"
    accepted = registry.get_sample_value(
        "metrics_ingest_http_samples_total", {"outcome": "accepted"}
    )
    assert accepted is None
    assert registry.get_sample_value("metrics_ingest_http_requests_total", {"status": "503"}) == 1

    publisher.failure = None
    answer = await http.post("/api/v1/metrics", json=body, headers=HEADERS)
    assert answer.status == 200
    assert len(publisher.items) == 1


async def test_events_answer_503_too(
    client: tuple[TestClient, MemoryPublisher, CollectorRegistry],
) -> None:
    http, publisher, _ = client
    publisher.failure = TimeoutError()
    # The event as the shared contract encodes it, not retyped here.
    event = HealthReported(
        service="shop", instance="shop-1", status=HealthStatus.PASS, reported_at=time.time()
    )
    body = b'{"events": [' + encode(event) + b"]}"
    answer = await http.post(
        "/api/v1/health-reports",
        data=body,
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    assert answer.status == 503, await answer.text()
    assert answer.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert publisher.items == []
