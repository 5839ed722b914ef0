"""``POST /-/reload``: re-read the configuration file, as Alertmanager's endpoint does.

Authenticated with a ``write`` token (``api/auth.py``). 200 when the file is loaded (or
unchanged); 400 with the reason when it is refused, the configuration in use staying.
"""

from __future__ import annotations

from aiohttp import web

from alert_engine.pipeline.reload import ConfigReloader, ReloadFailed, ReloadTrigger


class ReloadApi:
    def __init__(self, reloader: ConfigReloader | None) -> None:
        self._reloader = reloader

    def register(self, app: web.Application) -> None:
        app.router.add_post("/-/reload", self.reload)

    async def reload(self, _: web.Request) -> web.Response:
        if self._reloader is None:
            raise web.HTTPBadRequest(
                text="no configuration file to reload (ALERT_ENGINE_CONFIG_FILE is not set)"
            )
        try:
            await self._reloader.reload(ReloadTrigger.API)
        except ReloadFailed as exc:
            raise web.HTTPBadRequest(text=f"failed to reload config: {exc}") from None
        return web.Response(text="configuration reloaded\n")
