"""ASGI middleware (Starlette, FastAPI, any ASGI app):

    app.add_middleware(OpsmeshMiddleware)           # Starlette / FastAPI
    app = OpsmeshMiddleware(app)                     # any ASGI app

It answers the probes ``/health/live``, ``/health/ready`` and ``/health/startup`` itself
(``opsmesh_client.health``). The route is the template Starlette matched
(``/orders/{id}``), read from the scope after the app ran; apps that do not set
``scope["route"]`` are recorded as unmatched rather than by raw path, which would make
one series per URL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opsmesh_client.client import Client, get_client
from opsmesh_client.health import PROBES
from opsmesh_client.integrations._request import RequestScope

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _traceparent(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"traceparent":
            return bytes(value).decode("latin-1")
    return None


def _route(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    return str(scope.get("root_path", "")) + path


class OpsmeshMiddleware:
    def __init__(self, app: ASGIApp, client: Client | None = None) -> None:
        self.app = app
        self._client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self._client or get_client()
        if client is not None and scope["type"] == "http" and scope.get("path") in PROBES:
            status, body = client.health.probe(scope["path"])
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        request = (
            RequestScope.open(
                self._client,
                scope.get("method", "GET"),
                _traceparent(scope),
                asynchronous=True,
            )
            if scope["type"] == "http"
            else None
        )
        if request is None:
            await self.app(scope, receive, send)
            return
        status = 500  # an app that raises before answering failed the request

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            request.close(_route(scope), status)
