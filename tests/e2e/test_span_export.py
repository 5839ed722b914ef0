"""Span export by a real service process, configured only by the standard OTEL_*
environment: metrics-ingest runs with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a local
OTLP/HTTP receiver (protobuf, as a collector's port 4318 speaks it). A sample posted with
a ``traceparent`` becomes a SERVER span continuing it, a ``send opsmesh.metrics`` span
under that, and, once its window closes, a ``send opsmesh.signals`` span under the
sample's; every span names the service in its resource."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from opsmesh.devinfra import Endpoints
from opsmesh.devtools.mesh import Mesh
from opsmesh.tracing.context import new_trace
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


@pytest.fixture
def collector_spans() -> list[Span]:
    return []


@pytest.fixture
async def collector(collector_spans: list[Span]) -> TestServer:
    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        collector_spans.extend(_spans(await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def exporting_ingest(infra: Endpoints, collector: TestServer, tmp_path: Path) -> Iterator[Mesh]:
    mesh = Mesh(
        infra,
        tmp_path,
        common_env={"OPSMESH_SELF_REPORT_S": "0"},
        env={
            "metrics-ingest": {
                "METRICS_INGEST_API_TOKEN": TOKEN,
                "METRICS_INGEST_WINDOWS_S": "1",
                "METRICS_INGEST_ALLOWED_LATENESS_S": "0.5",
                "METRICS_INGEST_IDLE_GRACE_S": "0.5",
                "OTEL_EXPORTER_OTLP_ENDPOINT": str(collector.make_url("")).rstrip("/"),
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            }
        },
    )
    try:
        mesh.start(["metrics-ingest"])
        yield mesh
    finally:
        mesh.stop_all()


async def test_a_service_exports_its_spans_over_otlp_when_the_endpoint_is_set(
    exporting_ingest: Mesh, collector_spans: list[Span], unique: str
) -> None:
    caller = new_trace()
    url = f"{exporting_ingest.running['metrics-ingest'].url}/api/v1/metrics"
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

    def ours(name: str) -> list[Span]:
        return [s for s in collector_spans if s.trace_id == caller.trace_id and s.name == name]

    async def chain() -> list[list[Span]]:
        names = ("POST /api/v1/metrics", "send opsmesh.metrics", "send opsmesh.signals")
        return [ours(name) for name in names]

    [server], [send_sample], [send_signal] = await eventually(
        chain, until=all, timeout_s=30, what="the exported spans"
    )
    assert {server.service, send_sample.service, send_signal.service} == {"metrics-ingest"}
    assert server.parent_id == caller.span_id
    assert server.kind == 2  # SPAN_KIND_SERVER
    assert send_sample.parent_id == server.span_id
    assert send_sample.kind == 4  # SPAN_KIND_PRODUCER
    assert send_sample.attributes["messaging.destination.name"] == "opsmesh.metrics"
    # The rollup's signal continues the trace of the sample that opened its window.
    assert send_signal.parent_id == send_sample.span_id
    assert send_signal.attributes["cloudevents.event_type"] == "dev.opsmesh.signal.observed"
