"""The read-only boards: health, queries (top fingerprints with their p95 trends, findings,
index advice, one query with its trend and its plans as trees) and notifications
(receivers and held-back notifications). Each reads its service's REST API per request; a
service that fails is named on the page."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from console.api.auth import context
from console.bootstrap import SERVICES
from console.core.alerts import receiver_load
from console.core.plans import PlanError, plan_tree
from console.core.trends import SPANS, Span, Trend, series_of, span_of, trend_of
from console.rendering import html
from console.upstream import Upstream, UpstreamError

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
_SORTS = {"total": "total_ms", "p95": "p95_ms", "calls": "calls"}


def _part(result: object) -> dict[str, Any]:
    if isinstance(result, UpstreamError):
        return {"value": None, "error": str(result)}
    if isinstance(result, BaseException):
        raise result
    return {"value": result, "error": None}


async def health_board(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        found = _part(await services.health.get_json("/api/v1/services"))
    except UpstreamError as exc:
        found = _part(exc)
    return html(
        services.templates,
        "health.html",
        **context(request, services_=found, now=services.clock.now()),
    )


async def health_service(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    name = request.match_info["name"]
    try:
        found = await services.health.get_json(f"/api/v1/services/{name}")
    except UpstreamError as exc:
        status = 404 if exc.status == 404 else 502
        return html(
            services.templates,
            "error.html",
            status,
            **context(request, title="health-aggregator answered", message=str(exc)),
        )
    return html(
        services.templates,
        "health_service.html",
        **context(request, detail=found, now=services.clock.now()),
    )


async def _windows(queries: Upstream, fingerprints: list[str], span: Span) -> dict[str, Any]:
    """The fingerprints' buckets over the span, per series, from one call to
    query-analyzer's windows endpoint; a failure is named, the rest of the page shows."""
    if not fingerprints:
        return {"value": {}, "error": None}
    params = [
        *(("fingerprint", f) for f in sorted(set(fingerprints))),
        ("step", str(span.step_s)),
        ("buckets", str(span.buckets)),
    ]
    try:
        answer = await queries.request("GET", "/api/v1/queries/windows", params=params)
    except UpstreamError as exc:
        return {"value": {}, "error": str(exc)}
    return {"value": series_of(json.loads(answer)), "error": None}


def _trends(
    rows: list[dict[str, Any]], windows: dict[str, Any], span: Span, **size: int
) -> dict[str, Any]:
    """Each row's trend, by fingerprint, database and version."""
    trends: dict[tuple[str, str, str], Trend] = {}
    for row in rows:
        key = (str(row["fingerprint"]), str(row["database"]), str(row["fingerprint_version"]))
        trends[key] = trend_of(windows["value"].get(key, []), span, **size)
    return {"value": trends, "error": windows["error"]}


async def queries_board(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    sort = request.query.get("sort", "total")
    key = _SORTS.get(sort, "total_ms")
    span = span_of(request.query.get("trend"))
    results: list[object] = await asyncio.gather(
        services.queries.get_json("/api/v1/queries", {"limit": "100"}),
        services.queries.get_json("/api/v1/findings", {"limit": "50"}),
        services.queries.get_json("/api/v1/recommendations", {"limit": "50"}),
        return_exceptions=True,
    )
    top, findings, advice = results
    top_part = _part(top)
    trends: dict[str, Any] = {"value": {}, "error": None}
    if top_part["value"] is not None:
        top_part["value"] = sorted(top_part["value"][:100], key=lambda q: -(q.get(key) or 0.0))[:50]
        shown = top_part["value"]
        windows = await _windows(services.queries, [str(q["fingerprint"]) for q in shown], span)
        trends = _trends(shown, windows, span)
    return html(
        services.templates,
        "queries.html",
        **context(
            request,
            top=top_part,
            trends=trends,
            span=span,
            spans=list(SPANS.values()),
            findings=_part(findings),
            advice=_part(advice),
            sort=sort,
            sorts=list(_SORTS),
        ),
    )


async def query_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    fingerprint = request.match_info["fingerprint"]
    if not _FINGERPRINT.match(fingerprint):
        raise web.HTTPNotFound(text="a fingerprint is 16 lowercase hex characters")
    span = span_of(request.query.get("trend"))
    try:
        # The trend's buckets are asked beside the statistics, not after them.
        found, windows = await asyncio.gather(
            services.queries.get_json(f"/api/v1/queries/{fingerprint}"),
            _windows(services.queries, [fingerprint], span),
        )
    except UpstreamError as exc:
        status = 404 if exc.status == 404 else 502
        return html(
            services.templates,
            "error.html",
            status,
            **context(request, title="query-analyzer answered", message=str(exc)),
        )
    plans = []
    for stored in found.get("plans", []):
        try:
            tree, problem = plan_tree(stored.get("plan")), None
        except PlanError as exc:
            tree, problem = None, str(exc)
        plans.append({"stored": stored, "tree": tree, "problem": problem})
    trends = _trends(found.get("stats", []), windows, span, width=360, height=60)
    return html(
        services.templates,
        "query.html",
        **context(
            request,
            query=found,
            plans=plans,
            trends=trends,
            span=span,
            spans=list(SPANS.values()),
        ),
    )


async def notifications_board(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    receivers, held = await asyncio.gather(
        services.notifier.get_json("/api/v1/receivers"),
        services.engine.suppressed(),
        return_exceptions=True,
    )
    return html(
        services.templates,
        "notifications.html",
        **context(
            request,
            receivers=_part(receivers),
            held=_part(held),
            load={r.receiver: r for r in receiver_load(services.feed.groups)},
        ),
    )


def register(app: web.Application) -> None:
    app.router.add_get("/fleet", health_board)
    app.router.add_get("/fleet/{name}", health_service)
    app.router.add_get("/queries", queries_board)
    app.router.add_get("/queries/{fingerprint}", query_page)
    app.router.add_get("/notifications", notifications_board)
