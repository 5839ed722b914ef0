"""Span export by real service processes, configured only by the standard OTEL_*
environment: metrics-ingest and the notifier run with ``OTEL_EXPORTER_OTLP_ENDPOINT``
pointing at a local OTLP/HTTP receiver (protobuf, as a collector's port 4318 speaks it),
beside the session's mesh (the notifier on a topic and consumer group of its own, so no
other process takes its records).

- A sample posted with a ``traceparent`` is a SERVER span continuing it and a
  ``send opsmesh.metrics`` span under that.
- A notification request published with a ``traceparent`` is a ``deliver webhook-0``
  CONSUMER span under it, a CLIENT span per HTTP attempt (whose context the webhook
  receives as ``traceparent``) and a ``send opsmesh.deliveries`` span for the result.
Every span names its service in its resource."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from notifier.samples import sample_request
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import NOTIFICATIONS, Topic
from opsmesh.tracing.context import new_trace, parse_traceparent
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh
from tests.fixtures.kafka import eventually

pytestmark = pytest.mark.e2e

TOKEN = "span-export-token-0123456789"


@dataclass
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, str] = field(default_factory=dict)


def _spans(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out = []
    for resource_spans in request.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope in resource_spans.scope_spans:
            for s in scope.spans:
                out.append(
                    Span(
                        service=resource.get("service.name", ""),
                        name=s.name,
                        kind=s.kind,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        attributes={a.key: a.value.string_value for a in s.attributes},
                    )
                )
    return out


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)  # their traceparent headers


@pytest.fixture
def received() -> Received:
    return Received()


@pytest.fixture
async def collector(received: Received) -> TestServer:
    """The OTLP/HTTP receiver, and a webhook target on the same server."""

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        received.spans.extend(_spans(await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def hook(request: web.Request) -> web.Response:
        received.webhooks.append(request.headers.get("traceparent", ""))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/hooks/export", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def exporting(
    infra: Endpoints, collector: TestServer, tmp_path: Path, unique: str
) -> AsyncIterator[Mesh]:
    topic = Topic(f"test.notifier.export.{unique}", 1, NOTIFICATIONS.key)
    await ensure_topics({"bootstrap_servers": infra.kafka_bootstrap}, [topic])
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": str(collector.make_url("")).rstrip("/"),
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    mesh = Mesh(
        infra,
        tmp_path,
        common_env={"OPSMESH_SELF_REPORT_S": "0", **otel},
        env={
            "metrics-ingest": {"METRICS_INGEST_API_TOKEN": TOKEN},
            "notifier": {
                "NOTIFIER_DEFAULT_WEBHOOK_URL": str(collector.make_url("/hooks/export")),
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
                "NOTIFIER_REQUESTS_TOPIC": topic.name,
                "NOTIFIER_CONSUMER_GROUP": topic.name,
            },
        },
    )
    try:
        # In a thread: the collector answers on this loop while the services start.
        await asyncio.to_thread(mesh.start, ["metrics-ingest", "notifier"])
        yield mesh
    finally:
        await asyncio.to_thread(mesh.stop_all)


def _named(received: Received, trace_id: str, *names: str) -> list[list[Span]]:
    return [[s for s in received.spans if s.trace_id == trace_id and s.name == n] for n in names]


async def test_http_ingest_exports_a_server_span_and_a_send_span(
    exporting: Mesh, received: Received, unique: str
) -> None:
    caller = new_trace()
    url = f"{exporting.running['metrics-ingest'].url}/api/v1/metrics"
    sample = {"name": f"export_{unique}", "kind": "gauge", "value": 1.0, "sampled_at": time.time()}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url,
            json={"samples": [sample]},
            headers={"Authorization": f"Bearer {TOKEN}", "traceparent": caller.header()},
        ) as response,
    ):
        assert response.status == 200, await response.text()

    async def chain() -> list[list[Span]]:
        return _named(received, caller.trace_id, "POST /api/v1/metrics", "send opsmesh.metrics")

    [server], [send] = await eventually(chain, until=all, timeout_s=30, what="the spans")
    assert {server.service, send.service} == {"metrics-ingest"}
    assert (server.kind, server.parent_id) == (2, caller.span_id)  # SPAN_KIND_SERVER
    assert server.attributes["http.route"] == "/api/v1/metrics"
    assert (send.kind, send.parent_id) == (4, server.span_id)  # SPAN_KIND_PRODUCER
    assert send.attributes["messaging.destination.name"] == "opsmesh.metrics"


async def test_a_delivery_exports_consumer_client_and_send_spans(
    infra: Endpoints, exporting: Mesh, received: Received, unique: str
) -> None:
    upstream = new_trace()  # the notification request's context (alert-engine's send span)
    request = sample_request("default", key=f"export-{unique}")
    topic = Topic(f"test.notifier.export.{unique}", 1, NOTIFICATIONS.key)
    producer = EventProducer({"bootstrap_servers": infra.kafka_bootstrap}, source="/tests/e2e")
    await producer.start()
    try:
        await producer.publish(Outgoing(topic, "k", request, trace=upstream))
    finally:
        await producer.stop()

    async def chain() -> list[list[Span]]:
        return _named(
            received, upstream.trace_id, "deliver webhook-0", "POST", "send opsmesh.deliveries"
        )

    [deliver], [client], [send] = await eventually(chain, until=all, timeout_s=30, what="the spans")
    assert {deliver.service, client.service, send.service} == {"notifier"}
    assert (deliver.kind, deliver.parent_id) == (5, upstream.span_id)  # SPAN_KIND_CONSUMER
    assert deliver.attributes["opsmesh.idempotency_key"] == request.idempotency_key
    assert (client.kind, client.parent_id) == (3, deliver.span_id)  # SPAN_KIND_CLIENT
    assert client.attributes["server.address"] == "127.0.0.1"
    assert (send.kind, send.parent_id) == (4, deliver.span_id)
    [header] = received.webhooks
    assert parse_traceparent(header) == parse_traceparent(
        f"00-{upstream.trace_id}-{client.span_id}-01"
    ), "the webhook carries the CLIENT span's context"
