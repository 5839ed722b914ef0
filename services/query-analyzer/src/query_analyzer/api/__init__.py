"""query-analyzer's HTTP API, one module per resource; handlers read
``request.app[SERVICES]``."""

from __future__ import annotations

from aiohttp import web

from query_analyzer.api import findings, profiles, queries
from query_analyzer.api.openapi import DOCUMENT
from query_analyzer.api.params import as_json


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/queries", queries.top_queries)
    # Before the fingerprint's route: "windows" is no fingerprint, but order decides.
    app.router.add_get("/api/v1/queries/windows", queries.query_windows)
    app.router.add_get("/api/v1/queries/{fingerprint}", queries.one_query)
    app.router.add_get("/api/v1/findings", findings.list_findings)
    app.router.add_get("/api/v1/recommendations", findings.list_recommendations)
    app.router.add_get("/api/v1/profiles", profiles.list_profiles)

    async def openapi(_: web.Request) -> web.Response:
        return as_json(DOCUMENT)

    app.router.add_get("/api/v1/openapi.json", openapi)
