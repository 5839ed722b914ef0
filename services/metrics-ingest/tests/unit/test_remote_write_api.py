"""POST /api/v1/write over HTTP, through the service's route table, with an in-repo fake
producer (the real broker is in tests/e2e/test_remote_write.py): the status codes a
Remote-Write sender acts on, and what is published."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import cramjam
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from metrics_ingest.rollup.remote_write_proto import Label, Sample, TimeSeries, WriteRequest
from metrics_ingest.testing import MemoryPublisher, http_app, http_ingest
from opsmesh.events.metrics import MetricSampled
from opsmesh.topics import METRICS

TOKEN = "remote-write-token"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
MAX_BODY = 64 * 1024


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, MemoryPublisher, CollectorRegistry]]:
    producer = MemoryPublisher()
    registry = CollectorRegistry()
    # Remote write reads no database.
    http = http_ingest(TOKEN, producer, registry, max_body_bytes=MAX_BODY)
    test_client = TestClient(TestServer(http_app(http)))
    await test_client.start_server()
    try:
        yield test_client, producer, registry
    finally:
        await test_client.close()


def write_request(*series: tuple[dict[str, str], float]) -> bytes:
    now_ms = int(time.time() * 1000)
    message = WriteRequest(
        timeseries=[
            TimeSeries(
                labels=[Label(name=k, value=v) for k, v in labels.items()],
                samples=[Sample(value=value, timestamp=now_ms)],
            )
            for labels, value in series
        ]
    )
    return bytes(cramjam.snappy.compress_raw(message.SerializeToString()))


async def test_a_valid_write_is_published_and_answered_204(client) -> None:
    http, producer, registry = client
    response = await http.post(
        "/api/v1/write",
        data=write_request(({"__name__": "up", "job": "node"}, 1.0), ({"__name__": "x"}, 2.0)),
        headers=HEADERS,
    )
    assert response.status == 204, await response.text()
    assert [(o.topic, o.key) for o in producer.items] == [
        (METRICS, 'up{job="node"}'),
        (METRICS, "x"),
    ]
    assert isinstance(producer.items[0].event, MetricSampled)
    assert producer.items[0].event.labels == {"job": "node"}
    accepted = registry.get_sample_value(
        "metrics_ingest_remote_write_samples_total", {"outcome": "accepted"}
    )
    assert accepted == 2


async def test_refused_samples_answer_400_after_the_valid_ones_are_published(client) -> None:
    http, producer, _ = client
    response = await http.post(
        "/api/v1/write",
        data=write_request(({"__name__": "ok"}, 1.0), ({"job": "no-name"}, 1.0)),
        headers=HEADERS,
    )
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "samples_refused"
    assert answer["accepted"] == 1
    assert answer["refused"] == {"missing_name": 1}
    assert "missing_name" in answer["detail"]
    assert [o.key for o in producer.items] == ["ok"]


@pytest.mark.parametrize(
    ("headers", "data", "status", "error"),
    [
        ({**HEADERS, "Authorization": ""}, b"", 401, "unauthorized"),
        ({**HEADERS, "Authorization": "Bearer wrong"}, b"", 401, "unauthorized"),
        ({**HEADERS, "Content-Encoding": "gzip"}, b"", 415, "unsupported_encoding"),
        ({**HEADERS, "Content-Type": "application/json"}, b"", 415, "unsupported_media_type"),
        (
            {
                **HEADERS,
                "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            },
            b"",
            415,
            "unsupported_message",
        ),
        (HEADERS, b"\x05garbage", 400, "invalid_snappy"),
        (HEADERS, bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff")), 400, "invalid_protobuf"),
        (HEADERS, bytes(cramjam.snappy.compress_raw(b"\x00" * 100_000)), 413, "too_large"),
        (HEADERS, b"x" * (MAX_BODY + 1), 413, "too_large"),
        (
            HEADERS,
            write_request(*[({"__name__": "g", "i": str(i)}, 1.0) for i in range(51)]),
            413,
            "too_many_samples",
        ),
    ],
)
async def test_requests_that_will_never_be_accepted_are_4xx(
    client, headers, data, status, error
) -> None:
    http, producer, _ = client
    response = await http.post("/api/v1/write", data=data, headers=headers)
    assert response.status == status
    assert (await response.json())["error"] == error
    assert producer.items == []


async def test_the_v1_proto_parameter_is_accepted(client) -> None:
    http, producer, _ = client
    response = await http.post(
        "/api/v1/write",
        data=write_request(({"__name__": "g"}, 1.0)),
        headers={**HEADERS, "Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest"},
    )
    assert response.status == 204
    assert len(producer.items) == 1


async def test_a_broker_that_cannot_take_the_samples_is_a_retryable_503(client) -> None:
    http, producer, _ = client
    producer.failure = KafkaTimeoutError()
    response = await http.post(
        "/api/v1/write", data=write_request(({"__name__": "g"}, 1.0)), headers=HEADERS
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["error"] == "unavailable"
