"""metrics-ingest's HTTP API, one module per resource; handlers read
``request.app[SERVICES]``."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from metrics_ingest.api import events, metrics, remote_write, series
from metrics_ingest.api.openapi import openapi_document
from metrics_ingest.rollup.ingest import IngestLimits
from opsmesh.web.openapi import add_openapi_route


def routes(limits: IngestLimits, max_body_bytes: int) -> Callable[[web.Application], None]:
    """The routes, with the OpenAPI document that states the limits enforced."""

    def add(app: web.Application) -> None:
        app.router.add_post("/api/v1/metrics", metrics.ingest)
        app.router.add_post(remote_write.PATH, remote_write.write)
        for path, event_type, topic, key in events.ENDPOINTS:
            app.router.add_post(path, events.ingest_of(event_type, topic, key))
        app.router.add_get("/metrics/apps", metrics.apps)
        app.router.add_get("/api/v1/series", series.series)
        add_openapi_route(app, openapi_document(limits, max_body_bytes))

    return add
