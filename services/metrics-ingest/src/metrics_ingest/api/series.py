"""``GET /api/v1/series``: stored rollups of one metric over a time range."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from metrics_ingest.bootstrap import SERVICES
from metrics_ingest.pipeline.series import query_series
from metrics_ingest.rollup.query import BadQuery, parse_query


async def series(request: web.Request) -> web.Response:
    http = request.app[SERVICES].http
    try:
        query = parse_query(
            {k: v for k, v in request.query.items() if k != "match"},
            request.query.getall("match", []),
            now=http.clock.now(),
            window_sizes=http.window_sizes,
        )
    except BadQuery as exc:
        return web.json_response({"error": exc.reason.value, "detail": exc.detail}, status=400)
    if http.pool is None:
        return web.json_response(
            {"error": "not_configured", "detail": "no rollup history here"}, status=503
        )
    result: dict[str, Any] = {
        "name": query.name,
        "start": query.start,
        "end": query.end,
        "step": query.step,
        "window_s": query.window_s,
        "series": await query_series(http.pool, query),
    }
    return web.json_response(result)
