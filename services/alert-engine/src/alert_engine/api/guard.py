"""Query and path parameters are input too: one check for all of them, before any handler.

A parameter holding NUL reaches PostgreSQL on some paths (``/api/v1/alerts/{fingerprint}
/history``, ``DELETE /api/v1/rules/{group}``), which refuses it with an error, not an
empty answer. Checked here once for every endpoint, so a new one cannot forget: a 400
naming the parameter. (aiohttp has decoded percent-escapes already, replacing invalid
UTF-8 with U+FFFD, so a lone surrogate cannot arrive this way; NUL can.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from alert_engine.core.validation import MAX_PARAMETER, describe, text_problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def parameter_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    checked = [("query parameter", name, value) for name, value in request.query.items()]
    checked.extend(("path parameter", name, value) for name, value in request.match_info.items())
    for kind, name, value in checked:
        for text in (name, value):
            problem = text_problem(text, MAX_PARAMETER)
            if problem is not None:
                raise web.HTTPBadRequest(
                    text=f"{kind} {name[:100]!r}: {describe(problem, MAX_PARAMETER)}"
                )
    return await handler(request)
