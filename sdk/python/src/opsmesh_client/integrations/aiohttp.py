"""aiohttp.web middleware:

    app = web.Application(middlewares=[opsmesh_client.integrations.aiohttp.middleware()])

The route is the resource's canonical template (``/orders/{id}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from opsmesh_client.client import Client
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
        scope = RequestScope.open(client, request.method, request.headers.get("traceparent"))
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
