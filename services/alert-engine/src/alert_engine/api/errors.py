"""Error bodies as Alertmanager writes them, and unreadable bodies as 400s.

Alertmanager's API v2 answers errors with a JSON string (``"bad matcher ..."``, media type
``application/json``), which its clients (amtool, Grafana) decode; the handlers here raise
aiohttp's plain-text errors, so under ``/api/v2/`` this middleware re-encodes them. A body
that cannot be read (a ``Content-Encoding`` whose data does not decompress, a truncated
chunk) is the client's error, a 400 with the reason, on every path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_V2 = "/api/v2/"


@web.middleware
async def error_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestPayloadError as exc:
        error: web.HTTPException = web.HTTPBadRequest(text=f"unreadable request body: {exc}")
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(_V2) or exc.text is None:
            raise
        error = exc
    if request.path.startswith(_V2):
        return web.json_response(error.text, status=error.status, headers=_kept(error))
    raise error


def _kept(error: web.HTTPException) -> dict[str, str]:
    """Headers that say something beyond the body (WWW-Authenticate, Allow)."""
    return {k: v for k, v in error.headers.items() if k in ("WWW-Authenticate", "Allow")}
