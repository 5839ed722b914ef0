"""What both HTTP APIs share: access to the engine state and the silence writes."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from alert_engine.api.shapes import decode_silence, to_silence
from alert_engine.core.silences import Silence, SilenceError, SilenceNotFound
from alert_engine.pipeline.state import EngineState


class StateApi:
    """Handlers over the engine state, which exists once the service's resources are open
    (routes are registered before that, hence the provider)."""

    def __init__(self, state: Callable[[], EngineState]) -> None:
        self._state = state

    @property
    def state(self) -> EngineState:
        return self._state()

    async def write_silence(self, request: web.Request) -> Silence:
        """Create or update from the body; 400 on invalid input, 404 on an unknown id."""
        posted = decode_silence(await request.read())
        try:
            return await self.state.set_silence(to_silence(posted, self.state.clock.now()))
        except SilenceNotFound:
            raise web.HTTPNotFound(text=f"silence {posted.id} not found") from None
        except SilenceError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None

    async def expire(self, request: web.Request) -> Silence:
        try:
            return await self.state.expire_silence(request.match_info["silence_id"])
        except SilenceNotFound:
            raise web.HTTPNotFound(text="silence not found") from None
        except SilenceError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
