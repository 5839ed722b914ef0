"""What both HTTP APIs share: the engine state of the running service and the silence
writes."""

from __future__ import annotations

from aiohttp import web

from alert_engine.api.shapes import decode_silence, to_silence
from alert_engine.bootstrap import SERVICES
from alert_engine.core.silences import Silence, SilenceError, SilenceNotFound
from alert_engine.pipeline.state import EngineState


def engine_state(request: web.Request) -> EngineState:
    return request.app[SERVICES].state


async def write_silence(request: web.Request) -> Silence:
    """Create or update from the body; 400 on invalid input, 404 on an unknown id."""
    posted = decode_silence(await request.read())
    state = engine_state(request)
    try:
        return await state.set_silence(to_silence(posted, state.clock.now()))
    except SilenceNotFound:
        raise web.HTTPNotFound(text=f"silence {posted.id} not found") from None
    except SilenceError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


async def expire(request: web.Request) -> Silence:
    try:
        return await engine_state(request).expire_silence(request.match_info["silence_id"])
    except SilenceNotFound:
        raise web.HTTPNotFound(text="silence not found") from None
    except SilenceError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
