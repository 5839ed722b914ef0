"""Exported spans over real Kafka and HTTP, through the kit as the services use it: an
HTTP ingest (web kit) publishes samples, a consumer answers several of them with one
record (its trace the newest input's, the others links), a second consumer delivers it
over HTTP (client middleware) and publishes the result. The SDK's in-memory exporter
receives the spans; the test follows the parent/child chain from the caller's span to
the delivery and checks names, kinds and attributes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from tests.fixtures.kafka import eventually, header, read_all, run_consumer

from opsmesh.events import MetricSampled
from opsmesh.kafka import BatchResult, EventProducer, Outgoing, Received, StatelessHandler
from opsmesh.kafka.admin import ensure_topics
from opsmesh.topics import DLQ, Topic
from opsmesh.tracing import Tracing, install, traced
from opsmesh.tracing.context import TraceContext, fan_in, new_trace, parse_traceparent
from opsmesh.tracing.http import trace_outgoing
from opsmesh.tracing.setup import provider_for
from opsmesh.web.app import ServiceSpec, init_app
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    old = install(Tracing(provider_for("trace-test", {}, exporter, batch=False)))
    try:
        yield exporter
    finally:
        install(old).shutdown()


@pytest.fixture
async def topics(infra: Endpoints, unique: str) -> tuple[dict, list[Topic]]:
    connection = {"bootstrap_servers": infra.kafka_bootstrap}
    made = [Topic(f"test.trace.{unique}.{n}", 1, "test") for n in ("in", "mid", "out")]
    await ensure_topics(connection, [*made, DLQ])
    return connection, made


def sample(i: int) -> MetricSampled:
    return MetricSampled(name="requests_total", value=float(i), sampled_at=1_700_000_000.0 + i)


class Answer(StatelessHandler):
    """Many inputs, one output: the newest input's trace, the others as links."""

    def __init__(self, producer: EventProducer, out: Topic, expect: int) -> None:
        self._producer, self._out, self._expect = producer, out, expect
        self._held: list[Received[MetricSampled]] = []

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        self._held.extend(batch)
        if len(self._held) >= self._expect:
            merged = fan_in(r.trace for r in self._held)
            await self._producer.publish(
                Outgoing(self._out, "answer", sample(99), trace=merged.parent, links=merged.links)
            )
            self._held = []
        return BatchResult()


class Deliver(StatelessHandler):
    """A delivery: under the record's context, an HTTP call, then the result."""

    def __init__(self, producer: EventProducer, out: Topic, url: str) -> None:
        self._producer, self._out, self._url = producer, out, url
        self.session = aiohttp.ClientSession(middlewares=(trace_outgoing,))

    async def handle(self, batch: Sequence[Received[MetricSampled]]) -> BatchResult:
        for record in batch:
            with traced("deliver webhook", kind=SpanKind.CONSUMER, parent=record.trace) as ctx:
                async with self.session.post(self._url, json={"ok": 1}) as response:
                    await response.read()
            await self._producer.publish(Outgoing(self._out, "result", sample(1), trace=ctx))
        return BatchResult()


async def _sink() -> tuple[TestServer, list[str]]:
    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(request.headers.get("traceparent", ""))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hooks/x", hook)
    server = TestServer(app)
    await server.start_server()
    return server, received


def _hex(span: ReadableSpan) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def _parent_id(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None


async def test_spans_follow_one_event_from_http_ingest_to_an_http_delivery(
    exported: InMemorySpanExporter, topics: tuple[dict, list[Topic]], unique: str
) -> None:
    connection, (first, middle, last) = topics
    producer = EventProducer(connection, source="/tests/trace")
    await producer.start()
    sink, received = await _sink()
    stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
    deliver = Deliver(producer, last, str(sink.make_url("/hooks/x")))

    def routes(app: web.Application) -> None:
        async def ingest(request: web.Request) -> web.Response:
            body = await request.json()
            await producer.publish_batched(
                [Outgoing(first, f"s{i}", sample(i)) for i in body["samples"]]
            )
            return web.json_response({"accepted": len(body["samples"])})

        app.router.add_post("/api/v1/metrics", ingest)

    spec = ServiceSpec(name="trace-test", registry=CollectorRegistry(), routes=routes)
    api = TestServer(init_app(spec))
    await api.start_server()
    try:
        for topic, handler in ((first, Answer(producer, middle, 3)), (middle, deliver)):
            stop, task, _ = await run_consumer(
                connection, topic, f"trace-{unique}-{topic.name}", handler, producer
            )
            stops.append((stop, task))
        other = new_trace()  # another trace among the inputs: a link
        await producer.publish(Outgoing(first, "other", sample(7), trace=other))
        caller = new_trace()  # the application's span that calls the ingest
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                api.make_url("/api/v1/metrics"),
                json={"samples": [1, 2]},
                headers={"traceparent": caller.header()},
            ) as response,
        ):
            assert response.status == 200

        async def results() -> list[Any]:
            return await read_all(connection["bootstrap_servers"], last.name)

        [result] = await eventually(results, until=bool, what="the delivery's result")
    finally:
        for stop, _ in stops:
            stop.set()
        for _, task in stops:
            await task
        await deliver.session.close()
        await api.close()
        await sink.close()
        await producer.stop()

    spans = exported.get_finished_spans()
    by_id = {_hex(s)[1]: s for s in spans}
    mine = [s for s in spans if _hex(s)[0] == caller.trace_id]

    # The chain, from the delivery back to the caller, by parent ids.
    [client] = [s for s in mine if s.kind is SpanKind.CLIENT]
    chain = [client]
    while (parent := _parent_id(chain[-1])) in by_id:
        chain.append(by_id[parent])
    assert [(s.kind, s.name) for s in reversed(chain)] == [
        (SpanKind.SERVER, "POST /api/v1/metrics"),
        (SpanKind.PRODUCER, f"send {first.name}"),
        (SpanKind.PRODUCER, f"send {middle.name}"),
        (SpanKind.CONSUMER, "deliver webhook"),
        (SpanKind.CLIENT, "POST"),
    ]
    assert _parent_id(chain[-1]) == caller.span_id, "the server span continues the caller's"

    server, send_first, send_middle, deliver_span, _ = reversed(chain)
    assert server.attributes["http.route"] == "/api/v1/metrics"
    assert server.attributes["http.response.status_code"] == 200
    assert send_first.attributes["messaging.system"] == "kafka"
    assert send_first.attributes["messaging.destination.name"] == first.name
    assert send_first.attributes["cloudevents.event_type"] == "dev.opsmesh.metric.sampled"
    assert send_first.attributes["cloudevents.event_source"] == "/tests/trace"
    # One output of many inputs: the other trace is a link, the newest input the parent.
    assert [f"{li.context.trace_id:032x}" for li in send_middle.links] == [other.trace_id]
    assert client.attributes["http.request.method"] == "POST"
    assert client.attributes["http.response.status_code"] == 200

    # What went over the wire is each span's own context.
    assert received == [f"00-{caller.trace_id}-{_hex(client)[1]}-01"]
    [send_last] = [s for s in mine if s.name == f"send {last.name}"]
    assert _parent_id(send_last) == _hex(deliver_span)[1]
    carried = parse_traceparent(header(result, "traceparent"))
    assert carried == TraceContext(caller.trace_id, _hex(send_last)[1])
    assert all(s.end_time is not None for s in mine)
