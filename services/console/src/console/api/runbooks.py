"""``/runbooks`` (the list) and ``/runbooks/{name}`` (one runbook), readable without a
login like the other boards: the targets of the ``runbook_url`` in every notification."""

from __future__ import annotations

from aiohttp import web

from console.api.auth import context
from console.bootstrap import SERVICES
from console.rendering import html


async def runbook_list(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return html(
        services.templates,
        "runbooks.html",
        **context(request, runbooks=services.runbooks.listing()),
    )


async def runbook_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    name = request.match_info["name"]
    found = services.runbooks.page(name)
    if found is None:
        return html(
            services.templates,
            "error.html",
            404,
            **context(request, title="No such runbook", message=f"no runbook named {name!r}"),
        )
    return html(services.templates, "runbook.html", **context(request, runbook=found))


def register(app: web.Application) -> None:
    app.router.add_get("/runbooks", runbook_list)
    app.router.add_get("/runbooks/{name}", runbook_page)
