"""Silences: the list, one silence, the form (new, from an alert, edit) with its live
preview, and the writes (save, expire), sent to the alert-engine with the session's token."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from console.api.auth import context, require_writer
from console.bootstrap import SERVICES, Services
from console.core.alerts import find_alert
from console.core.silences import SilenceForm, SilenceFormError, matcher_text, preview
from console.rendering import html
from console.upstream import UpstreamError


def _error_page(services: Services, request: web.Request, exc: UpstreamError) -> web.Response:
    status = 502 if exc.transient else (exc.status or 502)
    return html(
        services.templates,
        "error.html",
        status,
        **context(request, title=f"{exc.service} answered", message=str(exc)),
    )


async def list_silences(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        found = await services.engine.silences()
    except UpstreamError as exc:
        return _error_page(services, request, exc)
    order = {"active": 0, "pending": 1, "expired": 2}
    found.sort(key=lambda s: (order.get(s.status.state, 3), -s.ends_at.timestamp()))
    return html(
        services.templates,
        "silences.html",
        **context(request, silences=found, matcher_text=matcher_text),
    )


async def show_silence(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        silence = await services.engine.silence(request.match_info["silence_id"])
    except UpstreamError as exc:
        return _error_page(services, request, exc)
    muted = preview(services.feed.groups, SilenceForm.for_silence(silence, 0).parsed_matchers())
    return html(
        services.templates,
        "silence.html",
        **context(request, silence=silence, matchers=matcher_text(silence), preview=muted),
    )


def _form_page(
    services: Services, request: web.Request, form: SilenceForm, error: str | None, status: int
) -> web.Response:
    shown = None
    with contextlib.suppress(SilenceFormError):
        shown = preview(services.feed.groups, form.parsed_matchers())
    return html(
        services.templates,
        "silence_form.html",
        status,
        **context(request, form=form, error=error, preview=shown),
    )


async def new_silence(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    require_writer(request)
    fingerprint = request.query.get("fingerprint")
    form = SilenceForm.blank()
    if fingerprint:
        alert = find_alert(services.feed.groups, fingerprint)
        if alert is not None:
            form = SilenceForm.for_alert(alert.labels)
    elif request.query.get("matchers"):
        form = SilenceForm(request.query["matchers"], "2h", "", "")
    return _form_page(services, request, form, None, 200)


async def edit_silence(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    require_writer(request)
    try:
        silence = await services.engine.silence(request.match_info["silence_id"])
    except UpstreamError as exc:
        return _error_page(services, request, exc)
    form = SilenceForm.for_silence(silence, services.clock.now())
    return _form_page(services, request, form, None, 200)


async def preview_fragment(request: web.Request) -> web.Response:
    """What the matchers typed so far would mute: the form asks on every keystroke."""
    services = request.app[SERVICES]
    form = SilenceForm(request.query.get("matchers", ""), "", "", "")
    error: str | None = None
    shown: Any = None
    try:
        shown = preview(services.feed.groups, form.parsed_matchers())
    except SilenceFormError as exc:
        error = str(exc)
    return html(services.templates, "_preview.html", **context(request, preview=shown, error=error))


async def save_silence(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    session = require_writer(request)
    posted = await request.post()
    form = SilenceForm(
        matchers=str(posted.get("matchers", "")),
        duration=str(posted.get("duration", "")),
        created_by=str(posted.get("created_by", "")),
        comment=str(posted.get("comment", "")),
        id=str(posted.get("id", "")),
    )
    try:
        silence_id = await services.engine.save_silence(
            form.to_postable(services.clock.now()), session.token
        )
    except SilenceFormError as exc:
        return _form_page(services, request, form, str(exc), 400)
    except UpstreamError as exc:
        if exc.transient:
            return _error_page(services, request, exc)
        return _form_page(services, request, form, str(exc), 400 if exc.status == 400 else 502)
    await _reread(services)
    raise web.HTTPSeeOther(f"/silences/{silence_id}")


async def expire_silence(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    session = require_writer(request)
    silence_id = request.match_info["silence_id"]
    try:
        await services.engine.expire_silence(silence_id, session.token)
    except UpstreamError as exc:
        return _error_page(services, request, exc)
    await _reread(services)
    raise web.HTTPSeeOther(f"/silences/{silence_id}")


async def _reread(services: Services) -> None:
    """After a write, the alerts it mutes or frees show at once, not at the next poll."""
    # The write succeeded either way; if this read fails the next poll shows the effect,
    # and the page says why meanwhile.
    with contextlib.suppress(UpstreamError):
        await services.feed.refresh()


def register(app: web.Application) -> None:
    app.router.add_get("/silences", list_silences)
    app.router.add_get("/silences/new", new_silence)
    app.router.add_get("/silences/preview", preview_fragment)
    app.router.add_post("/silences", save_silence)
    app.router.add_get("/silences/{silence_id}", show_silence)
    app.router.add_get("/silences/{silence_id}/edit", edit_silence)
    app.router.add_post("/silences/{silence_id}/expire", expire_silence)
