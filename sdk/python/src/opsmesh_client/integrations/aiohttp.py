"""aiohttp.web middleware:

    app = web.Application(middlewares=[opsmesh_client.integrations.aiohttp.middleware()])

It answers the probes ``/health/live``, ``/health/ready`` and ``/health/startup``.
The route is the resource's canonical template (``/orders/{id}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from opsmesh_client.client import Client, get_client
from opsmesh_client.health import PROBES
from opsmesh_client.integrations._request import RequestScope

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


def middleware(
    client: Client | None = None,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def opsmesh(request: web.Request, handler: Handler) -> web.StreamResponse:
        active = client or get_client()
        if active is not None and request.path in PROBES:
            status, body = active.health.probe(request.path)
            return web.Response(status=status, body=body, content_type="application/json")
        scope = RequestScope.open(
            client, request.method, request.headers.get("traceparent"), asynchronous=True
        )
        if scope is None:
            return await handler(request)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # aiohttp's answers raised as exceptions
            status = exc.status
            raise
        finally:
            scope.close(_route(request), status)

    return opsmesh
