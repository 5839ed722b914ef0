"""Live updates: server-sent events that say when the alerts changed; the alerts page
(htmx's SSE extension) then re-reads its groups with the filter in its URL.

Each event carries the feed's version as its id. A stream ends on its own before the
service's request deadline (``OPSMESH_HTTP_REQUEST_TIMEOUT_S``) would cut it; the browser
reconnects after ``retry`` and sends the last id it saw (``Last-Event-ID``), so a change
in between is announced at once. A page's first connection names the version it was
rendered from (``?since=``) for the same reason.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from console.bootstrap import SERVICES
from opsmesh.web.connections import REQUEST_TIMEOUT_KEY

# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0
# How long a stream lasts at most, and its share of the request deadline.
MAX_STREAM_S = 300.0
DEADLINE_SHARE = 0.8
RECONNECT_MS = 1000


def _seen(request: web.Request, current: int) -> int:
    for raw in (request.headers.get("Last-Event-ID"), request.query.get("since")):
        if raw is not None and raw.lstrip("-").isdigit():
            return int(raw)
    return current


async def events(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    deadline = request.app.get(REQUEST_TIMEOUT_KEY)
    lifetime = min(MAX_STREAM_S, deadline * DEADLINE_SHARE) if deadline else MAX_STREAM_S
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + lifetime
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await response.prepare(request)
    seen = _seen(request, services.feed.version)
    try:
        await response.write(f"retry: {RECONNECT_MS}\n\n".encode())
        while (left := ends_at - loop.time()) > 0:
            version = services.feed.version
            if version == seen:
                version = await services.feed.changed(seen, min(KEEPALIVE_S, left))
            if version == seen:
                await response.write(b": keep-alive\n\n")
                continue
            seen = version
            await response.write(f"id: {version}\nevent: alerts\ndata: {version}\n\n".encode())
        await response.write_eof()
    except ConnectionResetError:
        pass  # the page went away (closed, navigated): the usual end of a stream
    return response


def register(app: web.Application) -> None:
    app.router.add_get("/events", events)
