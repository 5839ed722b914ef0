"""The deliveries page (per receiver and integration: results, retries, circuit state,
recent failures, dead letters) and a dead letter's replay (write scope, CSRF-checked by
``console.api.auth``). Everything is read from the notifier's REST API per request."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from console.api.auth import context, require_writer
from console.bootstrap import SERVICES
from console.core.deliveries import integration_rows
from console.rendering import html
from console.upstream import UpstreamError

_LETTER_ID = re.compile(r"^[0-9]{1,6}-[0-9]{1,19}$")
_RESULTS = ("", "delivered", "failed")
_MAX_FILTER = 256


def _part(result: object, shape: Any = None) -> dict[str, Any]:
    if isinstance(result, UpstreamError):
        return {"value": None, "error": str(result)}
    if isinstance(result, BaseException):
        raise result
    return {"value": shape(result) if shape else result, "error": None}


def _filters(request: web.Request) -> dict[str, str]:
    found = {
        name: request.query.get(name, "").strip()[:_MAX_FILTER]
        for name in ("receiver", "integration", "result")
    }
    if found["result"] not in _RESULTS:
        found["result"] = ""
    return found


async def deliveries_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    filters = _filters(request)
    wanted = {k: v for k, v in filters.items() if v}
    log_params = {"limit": "50", "result": "failed", **wanted}
    letter_params = {
        "limit": "50",
        **{k: v for k, v in wanted.items() if k in ("receiver", "integration")},
    }
    summary, failures, letters = await asyncio.gather(
        services.notifier.summary(),
        services.notifier.deliveries(log_params),
        services.notifier.dead_letters(letter_params),
        return_exceptions=True,
    )
    integrations = _part(summary, integration_rows)
    if integrations["value"] is not None and (filters["receiver"] or filters["integration"]):
        integrations["value"] = [
            r
            for r in integrations["value"]
            if filters["receiver"] in ("", r.receiver)
            and filters["integration"] in ("", r.integration)
        ]
    return html(
        services.templates,
        "deliveries.html",
        **context(
            request,
            filters=filters,
            integrations=integrations,
            window_s=summary.get("window_s") if isinstance(summary, dict) else None,
            failures=_part(failures),
            letters=_part(letters),
            replayed=request.query.get("replayed", "")[:40],
            now=services.clock.now(),
        ),
    )


async def replay(request: web.Request) -> web.Response:
    session = require_writer(request)
    services = request.app[SERVICES]
    letter_id = request.match_info["id"]
    if not _LETTER_ID.match(letter_id):
        raise web.HTTPNotFound(text="a dead letter id is <partition>-<offset>")
    try:
        await services.notifier.replay(letter_id, session.token)
    except UpstreamError as exc:
        return html(
            services.templates,
            "error.html",
            exc.status if exc.status and 400 <= exc.status < 500 else 502,
            **context(request, title="The notifier refused the replay", message=str(exc)),
        )
    raise web.HTTPSeeOther(f"/deliveries?replayed={letter_id}")


def register(app: web.Application) -> None:
    app.router.add_get("/deliveries", deliveries_page)
    app.router.add_post("/deliveries/dead-letters/{id}/replay", replay)
