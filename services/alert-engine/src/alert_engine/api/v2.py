"""Alertmanager's API v2 (``/api/v2``) and management endpoints, with its request and
response shapes, so Prometheus, Grafana and amtool work against the engine unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web

from alert_engine.api.base import engine_state, expire, write_silence
from alert_engine.api.shapes import (
    alert_json,
    bool_param,
    decode_alerts,
    filter_param,
    receiver_param,
    silence_json,
)
from alert_engine.api.status import ServerStatus, status_json
from alert_engine.bootstrap import SERVICES
from alert_engine.core.alerts import InvalidAlert, from_posted
from alert_engine.core.listing import ListQuery
from alert_engine.core.matchers import matches_all
from alert_engine.core.silences import SilenceNotFound
from alert_engine.label_batches import fingerprints as label_fingerprints
from opsmesh.tracing.context import new_trace
from opsmesh.tracing.spans import current_trace


def _query(request: web.Request, *, muted: bool = True) -> ListQuery:
    """The listings' parameters, validated before anything is read (a 400 names one)."""
    return ListQuery(
        matchers=tuple(filter_param(request)),
        receiver=receiver_param(request),
        active=bool_param(request, "active"),
        silenced=bool_param(request, "silenced"),
        inhibited=bool_param(request, "inhibited"),
        muted=muted,
    )


class AlertmanagerApi:
    def __init__(self, status: ServerStatus) -> None:
        self._status = status

    @property
    def server_status(self) -> ServerStatus:
        return self._status

    def register(self, app: web.Application) -> None:
        app.router.add_post("/api/v2/alerts", self.post_alerts)
        app.router.add_get("/api/v2/alerts", self.get_alerts)
        app.router.add_get("/api/v2/alerts/groups", self.get_groups)
        app.router.add_get("/api/v2/silences", self.get_silences)
        app.router.add_post("/api/v2/silences", self.post_silence)
        app.router.add_get("/api/v2/silence/{silence_id}", self.get_silence)
        app.router.add_delete("/api/v2/silence/{silence_id}", self.delete_silence)
        app.router.add_get("/api/v2/status", self.get_status)
        app.router.add_get("/api/v2/receivers", self.get_receivers)
        app.router.add_get("/-/healthy", self.healthy)  # add_get serves HEAD too
        app.router.add_get("/-/ready", self.ready)
        app.router.add_post("/-/reload", self.reload)

    async def post_alerts(self, request: web.Request) -> web.Response:
        posted = decode_alerts(await request.read())
        now = engine_state(request).clock.now()
        resolve_timeout = engine_state(request).engine.config.resolve_timeout_s
        valid, errors = [], []
        fingerprints = label_fingerprints([item.labels for item in posted])
        # The request's trace (its traceparent, or its span): the alerts it fires keep it.
        trace = (current_trace() or new_trace()).header()
        for index, (item, fingerprint) in enumerate(zip(posted, fingerprints, strict=True)):
            try:
                valid.append(from_posted(item, now, resolve_timeout, fingerprint, trace))
            except InvalidAlert as exc:
                errors.append(f"alert {index}: {exc}")
        await engine_state(request).post_alerts(valid)  # takes the lock for the merge only
        if errors:
            # Like Alertmanager: the valid alerts are kept, the response lists the others.
            raise web.HTTPBadRequest(text="; ".join(errors[:50]))
        return web.Response(status=200)

    async def get_alerts(self, request: web.Request) -> web.Response:
        query = _query(request)
        bool_param(request, "unprocessed")  # validated; every alert is processed on ingest
        listing, _ = await engine_state(request).listing()
        return await _json_off_loop(
            lambda: [alert_json(a.alert, a.view) for a in listing.alerts(query)]
        )

    async def get_groups(self, request: web.Request) -> web.Response:
        query = _query(request, muted=bool_param(request, "muted"))
        listing, _ = await engine_state(request).listing()
        return await _json_off_loop(
            lambda: [
                {
                    "labels": group.labels,
                    "routeLabels": dict(group.route.labels),
                    "receiver": {"name": group.route.receiver},
                    "alerts": [alert_json(a.alert, a.view) for a in group.alerts],
                }
                for group in listing.groups(query)
            ]
        )

    async def get_silences(self, request: web.Request) -> web.Response:
        wanted = {
            "active": bool_param(request, "active"),
            "pending": bool_param(request, "pending"),
            "expired": bool_param(request, "expired"),
        }
        matchers = filter_param(request)
        now = engine_state(request).clock.now()
        out = []
        for silence in engine_state(request).engine.silences.all():
            if not wanted[silence.state(now).value]:
                continue
            # As Alertmanager: the filter applies to the label set the silence's plain
            # equality matchers describe.
            described = {m.name: m.value for m in silence.matchers if m.type.value == "="}
            if not matches_all(matchers, described):
                continue
            out.append(silence_json(silence, now))
        return web.json_response(out)

    async def post_silence(self, request: web.Request) -> web.Response:
        stored = await write_silence(request)
        return web.json_response({"silenceID": stored.id})

    async def get_silence(self, request: web.Request) -> web.Response:
        try:
            silence = engine_state(request).engine.silences.get(request.match_info["silence_id"])
        except SilenceNotFound:
            raise web.HTTPNotFound(text="silence not found") from None
        return web.json_response(silence_json(silence, engine_state(request).clock.now()))

    async def delete_silence(self, request: web.Request) -> web.Response:
        await expire(request)
        return web.Response(status=200)

    async def get_status(self, request: web.Request) -> web.Response:
        return web.json_response(
            status_json(self._status, engine_state(request).engine.config.original)
        )

    async def get_receivers(self, request: web.Request) -> web.Response:
        return web.json_response(
            [{"name": r.name} for r in engine_state(request).engine.config.receivers]
        )

    async def healthy(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(self, request: web.Request) -> web.Response:
        if not engine_state(request).restored.is_set():
            return web.Response(status=503, text="restoring state")
        return web.Response(text="OK")

    async def reload(self, request: web.Request) -> web.Response:
        """As Alertmanager's (``opsmesh.web.reload``): over this process's reloader."""
        return await request.app[SERVICES].reload.reload(request)


async def _json_off_loop(build: Callable[[], object]) -> web.Response:
    """A listing is built and encoded in a worker thread: with 10,000 alerts that is about
    a second of work, which on the event loop would stall ingest and flushes for every
    dashboard poll (these reads need no token). The listing is the call's own snapshot."""
    body = await asyncio.to_thread(lambda: json.dumps(build()))
    return web.Response(text=body, content_type="application/json")
