"""Live updates: server-sent events that say when the alerts changed; the alerts page
(htmx's SSE extension) then re-reads its groups with the filter in its URL."""

from __future__ import annotations

from aiohttp import web

from console.bootstrap import SERVICES

# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0


async def events(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await response.prepare(request)
    seen = services.feed.version
    try:
        while True:
            version = await services.feed.changed(seen, KEEPALIVE_S)
            if version == seen:
                await response.write(b": keep-alive\n\n")
                continue
            seen = version
            await response.write(f"event: alerts\ndata: {version}\n\n".encode())
    except ConnectionResetError:
        # The page went away (closed, navigated): the usual end of a stream.
        return response


def register(app: web.Application) -> None:
    app.router.add_get("/events", events)
