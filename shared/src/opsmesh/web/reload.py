"""``POST /-/reload``: re-read the configuration file, as Alertmanager's endpoint does.

Authentication is the service's (a ``write`` token). 200 when the file is loaded (or
unchanged); 400 ``failed to reload config: <where>: <why>`` when it is refused, the
configuration in use staying; 503 when a valid file cannot be applied now (try again).
"""

from __future__ import annotations

from aiohttp import web

from opsmesh.reload import ReloadFailed, Reloads, ReloadTrigger, ReloadUnavailable


class ReloadApi:
    def __init__(self, reloader: Reloads | None, *, no_file: str) -> None:
        """``no_file``: the answer when the service was started without a file."""
        self._reloader = reloader
        self._no_file = no_file

    def register(self, app: web.Application) -> None:
        app.router.add_post("/-/reload", self.reload)

    async def reload(self, _: web.Request) -> web.Response:
        if self._reloader is None:
            raise web.HTTPBadRequest(text=self._no_file)
        try:
            await self._reloader.reload(ReloadTrigger.API)
        except ReloadFailed as exc:
            raise web.HTTPBadRequest(text=f"failed to reload config: {exc}") from None
        except ReloadUnavailable as exc:
            raise web.HTTPServiceUnavailable(text=f"reload not applied, try again: {exc}") from None
        return web.Response(text="configuration reloaded\n")
