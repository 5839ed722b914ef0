"""health-aggregator's HTTP API, one module per resource; handlers read
``request.app[SERVICES]``."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from health_aggregator.api import probes, services
from health_aggregator.api.openapi import openapi_document
from opsmesh.web.openapi import add_openapi_route


def routes(history_limit: int) -> Callable[[web.Application], None]:
    """The routes, with the OpenAPI document that states ``history_limit``."""

    def add(app: web.Application) -> None:
        app.router.add_get("/health/", probes.fleet)
        app.router.add_get("/health/live/", probes.live)
        app.router.add_get("/health/ready/", probes.ready)
        app.router.add_get("/health/check/{name}/", probes.check)
        app.router.add_get("/api/v1/services", services.list_services)
        app.router.add_get("/api/v1/services/{name}", services.one_service)
        add_openapi_route(app, openapi_document(history_limit))

    return add
