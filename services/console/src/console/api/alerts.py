"""The alerts page (groups as the routing tree groups them, filtered by matchers), its
live fragment, and one alert with its history, explain and receivers."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from alert_engine.core.matchers import Matcher
from console.api.auth import context
from console.bootstrap import SERVICES, Services
from console.core.alerts import (
    FilterError,
    StateFilter,
    build_page,
    find_alert,
    parse_filter,
    receivers_of,
)
from console.core.deliveries import alert_notifications, keys_of
from console.rendering import html
from console.upstream import Notifier, UpstreamError


def _page_values(services: Services, request: web.Request) -> dict[str, Any]:
    text = request.query.get("filter", "")
    try:
        state = StateFilter(request.query.get("state", "all"))
    except ValueError:
        state = StateFilter.ALL
    try:
        page = int(request.query.get("page", "1"))
    except ValueError:
        page = 1
    error = None
    matchers: tuple[Matcher, ...] = ()
    try:
        matchers = parse_filter(text)
    except FilterError as exc:
        error = str(exc)
    view = build_page(
        services.feed.groups,
        matchers,
        now=services.clock.now(),
        state=state,
        page=page,
        groups_per_page=services.settings.groups_per_page,
        alerts_per_group=services.settings.alerts_per_group,
        pending=services.feed.pending,
    )
    return {
        "view": view,
        "filter": text,
        "filter_error": error,
        "state": state.value,
        "states": [s.value for s in StateFilter],
        "feed_error": services.feed.error,
        "read_at": services.feed.read_at,
        "version": services.feed.version,
    }


async def index(_: web.Request) -> web.Response:
    raise web.HTTPFound("/alerts")


async def alerts_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    values = _page_values(services, request)
    status = 400 if values["filter_error"] else 200
    return html(services.templates, "alerts.html", status, **context(request, **values))


async def groups_fragment(request: web.Request) -> web.Response:
    """The groups alone: what a filter change and a live update swap in."""
    services = request.app[SERVICES]
    values = _page_values(services, request)
    response = html(services.templates, "_groups.html", **context(request, **values))
    # The address bar follows the filter, so the view can be pasted into a chat as it is.
    query = request.query_string
    response.headers["HX-Replace-Url"] = f"/alerts?{query}" if query else "/alerts"
    return response


async def alert_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    fingerprint = request.match_info["fingerprint"]
    groups = services.feed.groups
    alert = find_alert(groups, fingerprint)
    if alert is None:
        return html(
            services.templates,
            "error.html",
            404,
            **context(request, title="No such alert", message=f"no active alert {fingerprint}"),
        )
    history, explain, logged = await asyncio.gather(
        services.engine.history(fingerprint),
        services.engine.explain(alert.labels),
        services.engine.notifications(fingerprint),
        return_exceptions=True,
    )
    return html(
        services.templates,
        "alert.html",
        **context(
            request,
            alert=alert,
            now=services.clock.now(),
            receivers=receivers_of(groups, fingerprint),
            history=_or_error(history),
            explain=_or_error(explain),
            **await _notifications(services.notifier, fingerprint, logged),
        ),
    )


async def _notifications(notifier: Notifier, fingerprint: str, logged: object) -> dict[str, Any]:
    """The alert's logged notifications joined to the notifier's delivery results; each
    service that fails is named, the other's part still shows."""
    entries = _or_error(logged)
    if entries["value"] is None:
        return {"notifications": entries, "delivery_error": None}
    keys = keys_of(entries["value"])
    found: list[dict[str, Any]] = []
    error = None
    if keys:
        try:
            found = await notifier.deliveries({"limit": "1000"}, keys[:100])
        except UpstreamError as exc:
            error = str(exc)
    joined = alert_notifications(fingerprint, entries["value"], found)
    return {"notifications": {"value": joined, "error": None}, "delivery_error": error}


def _or_error(result: object) -> dict[str, Any]:
    """A part of the page whose service failed says so; the rest of the page still shows."""
    if isinstance(result, UpstreamError):
        if result.status == 404:
            return {"value": None, "error": None}
        return {"value": None, "error": str(result)}
    if isinstance(result, BaseException):
        raise result
    return {"value": result, "error": None}


def register(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/alerts", alerts_page)
    app.router.add_get("/alerts/groups", groups_fragment)
    app.router.add_get("/alerts/{fingerprint}", alert_page)
