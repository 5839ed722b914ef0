"""Bearer tokens with scopes for the write APIs, compared in constant time.

Tokens come from ``ALERT_ENGINE_API_TOKENS`` (``token:scope+scope;token2:scope``) or a
file of such lines. Every mutating request (POST, PUT, PATCH, DELETE) under ``/api/``
needs a token with the ``write`` scope; reads need ``read`` when
``ALERT_ENGINE_READ_REQUIRES_TOKEN`` is set. Reads that expose the configuration
(``/api/v2/status``; secrets masked all the same) need ``read`` unless
``ALERT_ENGINE_PUBLIC_STATUS`` opens them. With no tokens configured, writes (and
configuration reads) are refused: secure by default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from opsmesh.web.tokens import READ, WRITE, ApiTokens, require_scope

__all__ = ["READ", "WRITE", "ApiTokens", "auth_middleware"]

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Reads whose answer includes the configuration (receivers, routes, integration settings).
CONFIGURATION_READS = frozenset({"/api/v2/status"})
_AUTHENTICATED = web.AppKey("authenticated_scopes", frozenset)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# How a caller gives a token, in the 401 itself: the tools people arrive with are amtool
# (which takes HTTP client settings from a file) and opsmesh's own CLI.
HOW_TO = (
    "Send 'Authorization: Bearer <token>' (tokens: ALERT_ENGINE_API_TOKENS). amtool:"
    " --http.config.file=FILE where FILE holds 'authorization: {credentials: <token>}';"
    " opsmesh: --token <token> or $ALERT_ENGINE_TOKEN."
)


def auth_middleware(
    tokens: ApiTokens, *, read_requires_token: bool, public_status: bool = False
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        protected = request.path.startswith("/api/") or request.path == "/-/reload"
        if not protected or request.match_info.http_exception:
            # Outside the API, or no such route or method (404/405): nothing to protect.
            return await handler(request)
        if request.method in _MUTATING:
            needed: str | None = WRITE
        elif read_requires_token or (request.path in CONFIGURATION_READS and not public_status):
            needed = READ
        else:
            needed = None
        if needed is None:
            return await handler(request)
        require_scope(request, tokens, needed, HOW_TO)
        return await handler(request)

    return middleware
