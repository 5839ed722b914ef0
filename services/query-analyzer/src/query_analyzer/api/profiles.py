"""``/api/v1/profiles``: the profiled routes by total profiled time, each with the
functions its requests spent their samples in."""

from __future__ import annotations

from aiohttp import web

from query_analyzer.api.params import as_json, bad, limit_of
from query_analyzer.bootstrap import SERVICES

MAX_FUNCTIONS = 100


async def list_profiles(request: web.Request) -> web.Response:
    limit = limit_of(request)
    service = request.query.get("service")
    if service is not None and not 1 <= len(service) <= 200:
        raise bad("service must be 1 to 200 characters")
    if service is not None and ("\x00" in service or not service.isprintable()):
        raise bad("service must be printable text")
    try:
        functions = int(request.query.get("functions", "10"))
    except ValueError:
        raise bad("functions must be an integer") from None
    if not 1 <= functions <= MAX_FUNCTIONS:
        raise bad(f"functions must be between 1 and {MAX_FUNCTIONS}")
    profiles = request.app[SERVICES].profiles
    return as_json(await profiles.routes(service=service, limit=limit, functions=functions))
