"""notifier's HTTP API, one module per resource; handlers read ``request.app[SERVICES]``."""

from __future__ import annotations

from aiohttp import web

from notifier.api import dead_letters, deliveries, receivers, reload
from notifier.api.openapi import DOCUMENT
from opsmesh.web.openapi import add_openapi_route


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/receivers", receivers.list_receivers)
    app.router.add_get("/api/v1/deliveries", deliveries.list_deliveries)
    app.router.add_get("/api/v1/deliveries/summary", deliveries.summary)
    app.router.add_get("/api/v1/dead-letters", dead_letters.list_dead_letters)
    app.router.add_post("/api/v1/dead-letters/{id}/replay", dead_letters.replay)
    app.router.add_post("/-/reload", reload.reload)
    add_openapi_route(app, DOCUMENT)
