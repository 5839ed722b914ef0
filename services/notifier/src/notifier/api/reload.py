"""``POST /-/reload``: re-read the receivers file (``opsmesh.web.reload``); the
``write`` token it needs is checked by ``notifier.api.auth``."""

from __future__ import annotations

from aiohttp import web

from notifier.bootstrap import SERVICES
from opsmesh.web.reload import ReloadApi

NO_FILE = "no receivers file to reload (NOTIFIER_RECEIVERS_FILE is not set)"


async def reload(request: web.Request) -> web.Response:
    return await ReloadApi(request.app[SERVICES].reloader, no_file=NO_FILE).reload(request)
