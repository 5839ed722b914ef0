"""The trace-context helpers: parsing, fan-in, the current context, span export setup,
and the HTTP server and client middleware (over a real local HTTP server)."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from opsmesh.settings import SettingsError
from opsmesh.tracing import Tracing, current_trace, install, traced, tracing, use_trace
from opsmesh.tracing.context import (
    MAX_LINKS,
    TraceContext,
    fan_in,
    new_trace,
    parse_traceparent,
    traceparent_of,
)
from opsmesh.tracing.http import trace_outgoing, trace_requests
from opsmesh.tracing.setup import configure_tracing, export_configured, provider_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{SPAN_ID}-01"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Span export on, into memory (SimpleSpanProcessor: exported when a span ends)."""
    exporter = InMemorySpanExporter()
    old = install(Tracing(provider_for("unit", {}, exporter, batch=False)))
    try:
        yield exporter
    finally:
        install(old).shutdown()


# -- parsing -----------------------------------------------------------------------


def test_a_later_version_is_read_for_its_first_four_fields() -> None:
    assert parse_traceparent(f"01-{TRACE_ID}-{SPAN_ID}-01") == TraceContext(TRACE_ID, SPAN_ID)
    assert parse_traceparent(f"cc-{TRACE_ID}-{SPAN_ID}-03-more") == TraceContext(
        TRACE_ID, SPAN_ID, "03"
    )
    assert parse_traceparent(f"cc-{TRACE_ID}-{SPAN_ID}-01more") is None
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-01-more") is None  # 00 is exact


@pytest.mark.parametrize(
    "value",
    [
        VALID.upper(),  # hex is lowercase
        f"00-{TRACE_ID}-{SPAN_ID}-0\u0661",  # a non-ASCII digit
        VALID[:-1],
        "x" * 10_000,
    ],
)
def test_invalid_values_are_ignored(value: str) -> None:
    assert parse_traceparent(value) is None


def test_the_raw_header_is_the_last_traceparent() -> None:
    headers = [("traceparent", b"one"), ("ce_id", b"x"), ("traceparent", VALID.encode())]
    assert traceparent_of(headers) == VALID.encode()
    assert traceparent_of(None) is None
    assert traceparent_of([("ce_id", b"x")]) is None


# -- fan-in ------------------------------------------------------------------------


def test_the_newest_input_is_the_parent_and_other_traces_are_links() -> None:
    a, b, c = new_trace(), new_trace(), new_trace()
    a2 = a.child()
    merged = fan_in([a, None, b, a2, c])
    assert merged.parent == c
    assert merged.links == (a, b)  # the first context seen of each other trace


def test_inputs_of_the_parents_own_trace_are_no_links() -> None:
    a = new_trace()
    merged = fan_in([a, a.child(), a.child()])
    assert merged.parent is not None
    assert merged.parent.trace_id == a.trace_id
    assert merged.links == ()
    assert fan_in([]).parent is None
    assert fan_in([None, None]).links == ()


def test_links_are_bounded() -> None:
    merged = fan_in(new_trace() for _ in range(MAX_LINKS * 3))
    assert len(merged.links) == MAX_LINKS


# -- current context and spans -------------------------------------------------------


def test_without_export_the_given_context_is_current_unchanged() -> None:
    assert not tracing().enabled
    parent = new_trace()
    with traced("work", parent=parent) as context:
        assert context == parent
        assert current_trace() == parent
    assert current_trace() is None
    with traced("root") as root:
        assert root != parent
        assert current_trace() == root
    with use_trace(parent):
        with use_trace(None):
            assert current_trace() is None
        assert current_trace() == parent


def test_with_export_a_block_is_a_span_child_of_its_parent(exported) -> None:
    parent = new_trace()
    link = new_trace()
    with traced("work", parent=parent, links=[link], attributes={"k": "v"}) as context:
        assert current_trace() == context
    (span,) = exported.get_finished_spans()
    assert span.name == "work"
    assert span.kind is SpanKind.INTERNAL
    assert f"{span.context.trace_id:032x}" == parent.trace_id
    assert f"{span.context.span_id:016x}" == context.span_id != parent.span_id
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == parent.span_id
    assert [f"{li.context.trace_id:032x}" for li in span.links] == [link.trace_id]
    assert span.attributes == {"k": "v"}
    assert span.resource.attributes["service.name"] == "unit"


def test_a_failing_block_ends_its_span_with_the_error_class_only(exported) -> None:
    with pytest.raises(ValueError, match="secret"), traced("work"):
        raise ValueError("https://hooks.example/secret-token")
    (span,) = exported.get_finished_spans()
    assert span.attributes == {"error.type": "ValueError"}
    assert span.parent is None  # no parent given: a root
    assert "secret" not in str(span.to_json())


# -- setup from the environment ------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_export_follows_the_standard_variables(env: dict[str, str], on: bool) -> None:
    assert export_configured(env) is on


def test_configure_installs_a_disabled_tracing_without_an_endpoint() -> None:
    old = tracing()
    try:
        assert configure_tracing("svc", {}).enabled is False
        assert tracing().enabled is False
    finally:
        install(old)


def test_configure_exports_over_otlp_http_with_the_service_name() -> None:
    old = tracing()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
    try:
        configured = configure_tracing("metrics-ingest", env)
        assert configured.enabled
        assert configured.provider is not None
        assert configured.provider.resource.attributes["service.name"] == "metrics-ingest"
    finally:
        install(old).shutdown(0.1)


def test_grpc_is_refused_with_a_clear_message() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(SettingsError, match="http/protobuf"):
        configure_tracing("svc", env)


# -- HTTP ----------------------------------------------------------------------------


async def _echo_server() -> TestServer:
    """A server behind the kit's middleware that answers with the context it ran under
    and the traceparent it received."""

    async def handle(request: web.Request) -> web.Response:
        current = current_trace()
        return web.json_response(
            {
                "current": current.header() if current else None,
                "received": request.headers.get("traceparent"),
            }
        )

    app = web.Application(middlewares=[trace_requests])
    app.router.add_post("/ingest/{name}", handle)
    app.router.add_get("/health/live", handle)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_a_request_traceparent_is_the_current_context_and_goes_out_again() -> None:
    server = await _echo_server()
    try:
        async with aiohttp.ClientSession(middlewares=(trace_outgoing,)) as session:
            url = server.make_url("/ingest/a")
            async with session.post(url, headers={"traceparent": VALID}) as response:
                assert await response.json() == {"current": VALID, "received": VALID}
            async with session.post(url, headers={"traceparent": "junk"}) as response:
                assert await response.json() == {"current": None, "received": "junk"}
            outgoing = new_trace()
            with use_trace(outgoing):  # the client sends the current context
                async with session.post(url) as response:
                    body = await response.json()
            assert body == {"current": outgoing.header(), "received": outgoing.header()}
            async with session.post(url) as response:  # none current: none sent
                assert await response.json() == {"current": None, "received": None}
    finally:
        await server.close()


async def test_with_export_requests_are_server_and_client_spans(exported) -> None:
    server = await _echo_server()
    try:
        async with aiohttp.ClientSession(middlewares=(trace_outgoing,)) as session:
            parent = new_trace()
            with use_trace(parent):
                async with session.post(server.make_url("/ingest/x?token=secret")) as response:
                    body = await response.json()
            async with session.get(server.make_url("/health/live")) as response:
                assert response.status == 200
    finally:
        await server.close()
    finished = exported.get_finished_spans()
    servers = [s for s in finished if s.kind is SpanKind.SERVER]
    clients = {s.name: s for s in finished if s.kind is SpanKind.CLIENT}
    assert len(servers) == 1, "the probe is not traced on the server side"
    assert set(clients) == {"POST", "GET"}
    client, server_span = clients["POST"], servers[0]
    assert client.parent is not None
    assert f"{client.parent.span_id:016x}" == parent.span_id
    assert f"{client.context.trace_id:032x}" == parent.trace_id
    # The header carried the client span; the server span is its child and was current.
    received = parse_traceparent(body["received"])
    assert received is not None
    assert received.span_id == f"{client.context.span_id:016x}"
    assert server_span.parent is not None
    assert server_span.parent.span_id == client.context.span_id
    assert body["current"] == f"00-{parent.trace_id}-{server_span.context.span_id:016x}-01"
    assert server_span.name == "POST /ingest/{name}"
    assert server_span.attributes["http.route"] == "/ingest/{name}"
    assert server_span.attributes["http.response.status_code"] == 200
    assert client.attributes["server.address"] == "127.0.0.1"
    assert client.attributes["http.response.status_code"] == 200
    assert all("secret" not in str(v) for v in client.attributes.values()), "no query in spans"
