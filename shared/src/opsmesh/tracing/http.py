"""Trace context over HTTP: the server middleware every service gets from the web kit,
and the client middleware for outgoing requests (the notifier's webhooks, Slack,
PagerDuty).

Server: a request's ``traceparent`` header (W3C; an invalid one is ignored, as the spec
asks) becomes the current context while it is handled, so what the handler publishes
continues it. With span export on, the request is a SERVER span (``{method} {route}``)
and that span's context is current instead. Probes and ``/metrics`` are left out.

Client: an outgoing request carries the current context as ``traceparent``; with export
on, each request (each retry too) is a CLIENT span named by its method, and the header
carries that span. Span attributes name the host, port and scheme, never the URL's path
or query: webhook and Slack URLs hold tokens there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from opsmesh.tracing.context import TRACEPARENT, parse_traceparent
from opsmesh.tracing.spans import SpanKind, context_of, current_trace, end_span, tracing, use_trace

# Requests that are never traced: probes and scrapes, many a minute, publishing nothing.
UNTRACED_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})
_SERVER_ERROR = 500
_CLIENT_ERROR = 400

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ClientHandler = Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]]


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def trace_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The server side (installed by ``opsmesh.web.app.init_app``, outermost)."""
    incoming = parse_traceparent(request.headers.get(TRACEPARENT))
    tracer = tracing()
    if not tracer.enabled or request.path in UNTRACED_PATHS:
        with use_trace(incoming):
            return await handler(request)
    route = _route(request)
    span = tracer.start(
        f"{request.method} {route}",
        kind=SpanKind.SERVER,
        parent=incoming,
        attributes={
            "http.request.method": request.method,
            "http.route": route,
            "url.scheme": request.scheme,
            "url.path": request.path,
        },
    )
    status = _SERVER_ERROR
    try:
        with use_trace(context_of(span)):
            response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        span.set_attribute("http.response.status_code", status)
        end_span(span, str(status) if status >= _SERVER_ERROR else None)


async def trace_outgoing(
    request: aiohttp.ClientRequest, handler: ClientHandler
) -> aiohttp.ClientResponse:
    """The client side: an aiohttp client middleware (``ClientSession(middlewares=...)``)."""
    parent = current_trace()
    tracer = tracing()
    if not tracer.enabled:
        if parent is not None:
            request.headers[TRACEPARENT] = parent.header()
        return await handler(request)
    url = request.url
    span = tracer.start(
        request.method,
        kind=SpanKind.CLIENT,
        parent=parent,
        attributes={
            "http.request.method": request.method,
            "server.address": url.host or "",
            "server.port": url.port or 0,
            "url.scheme": url.scheme,
        },
    )
    request.headers[TRACEPARENT] = context_of(span).header()
    try:
        response = await handler(request)
    except BaseException as exc:
        end_span(span, exc)
        raise
    span.set_attribute("http.response.status_code", response.status)
    end_span(span, str(response.status) if response.status >= _CLIENT_ERROR else None)
    return response
