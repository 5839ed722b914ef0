"""``GET /api/v1/receivers``: the receivers in use and their integrations, by name and
kind only (never a receiver's settings: URLs, keys, addresses)."""

from __future__ import annotations

from aiohttp import web

from notifier.bootstrap import SERVICES


async def list_receivers(request: web.Request) -> web.Response:
    table = request.app[SERVICES].table
    return web.json_response(
        [
            {"name": name, "integrations": [i for i, _, _ in receiver.integrations()]}
            for name, receiver in table.receivers.by_name.items()
        ]
    )
