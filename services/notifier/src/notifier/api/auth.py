"""Every POST (``/-/reload``, a dead letter's replay) needs a ``write`` token; the
notifier's reads are public."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from opsmesh.web.tokens import WRITE, ApiTokens, require_scope

# How a caller gives a token, in the 401 itself.
HOW_TO = "Send 'Authorization: Bearer <token>' (tokens: NOTIFIER_API_TOKENS, 'token:write')."


def reload_auth(tokens: ApiTokens) -> Middleware:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method == "POST" and not request.match_info.http_exception:
            require_scope(request, tokens, WRITE, HOW_TO)
        return await handler(request)

    return middleware
