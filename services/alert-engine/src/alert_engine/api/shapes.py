"""Request bodies (decoded with msgspec) and response shapes of Alertmanager's API v2."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from alert_engine.core.alerts import StoredAlert, rfc3339
from alert_engine.core.engine import AlertView
from alert_engine.core.matchers import Matcher, MatcherError, parse_matchers
from alert_engine.core.silences import Silence

MAX_ALERTS_PER_POST = 10_000


class PostableAlert(msgspec.Struct, rename="camel"):
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: Annotated[str, msgspec.Meta(max_length=2048)] = msgspec.field(
        default="", name="generatorURL"
    )


class ApiMatcher(msgspec.Struct, rename="camel"):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    value: Annotated[str, msgspec.Meta(max_length=4096)]
    is_regex: bool
    is_equal: bool = True


class PostableSilence(msgspec.Struct, rename="camel"):
    matchers: Annotated[list[ApiMatcher], msgspec.Meta(min_length=1, max_length=64)]
    starts_at: datetime
    ends_at: datetime
    created_by: Annotated[str, msgspec.Meta(max_length=256)]
    comment: Annotated[str, msgspec.Meta(max_length=4096)]
    id: str | None = None


_alerts_decoder = msgspec.json.Decoder(list[PostableAlert])
_silence_decoder = msgspec.json.Decoder(PostableSilence)


def decode_alerts(body: bytes) -> list[PostableAlert]:
    try:
        alerts = _alerts_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise web.HTTPBadRequest(text=f"invalid alerts: {exc}") from None
    except RecursionError:  # msgspec's answer to JSON nested past its recursion limit
        raise web.HTTPBadRequest(text="invalid alerts: JSON nested too deeply") from None
    if len(alerts) > MAX_ALERTS_PER_POST:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_ALERTS_PER_POST,
            actual_size=len(alerts),
            text=f"at most {MAX_ALERTS_PER_POST} alerts per request",
        )
    return alerts


def decode_silence(body: bytes) -> PostableSilence:
    try:
        return _silence_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise web.HTTPBadRequest(text=f"invalid silence: {exc}") from None
    except RecursionError:
        raise web.HTTPBadRequest(text="invalid silence: JSON nested too deeply") from None


def to_silence(posted: PostableSilence, now: float) -> Silence:
    try:
        matchers = tuple(
            Matcher.from_api(m.name, m.value, m.is_regex, m.is_equal) for m in posted.matchers
        )
    except MatcherError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return Silence(
        id=posted.id or "",
        matchers=matchers,
        starts_at=posted.starts_at.timestamp(),
        ends_at=posted.ends_at.timestamp(),
        created_by=posted.created_by,
        comment=posted.comment,
        updated_at=now,
    )


def matcher_json(m: Matcher) -> dict[str, Any]:
    return {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}


def silence_json(s: Silence, now: float) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": {"state": s.state(now).value},
        "updatedAt": rfc3339(s.updated_at),
        "matchers": [matcher_json(m) for m in s.matchers],
        "startsAt": rfc3339(s.starts_at),
        "endsAt": rfc3339(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
        # Alertmanager 0.34 requires the field (silence annotations); the engine keeps none.
        "annotations": {},
    }


def alert_json(a: StoredAlert, view: AlertView) -> dict[str, Any]:
    return {
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "fingerprint": a.fingerprint,
        "startsAt": rfc3339(a.starts_at),
        "updatedAt": rfc3339(a.updated_at),
        "endsAt": rfc3339(a.ends_at),
        "generatorURL": a.generator_url,
        "receivers": [{"name": r} for r in view.receivers],
        "status": {
            "state": view.state,
            "silencedBy": view.silenced_by,
            "inhibitedBy": view.inhibited_by,
            "mutedBy": view.muted_by,
        },
    }


def bool_param(request: web.Request, name: str, default: bool = True) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise web.HTTPBadRequest(text=f"{name} must be true or false")


def filter_param(request: web.Request) -> list[Matcher]:
    matchers: list[Matcher] = []
    for text in request.query.getall("filter", []):
        try:
            matchers.extend(parse_matchers(text))
        except MatcherError as exc:
            raise web.HTTPBadRequest(text=f"bad filter {text!r}: {exc}") from None
    return matchers


def receiver_param(request: web.Request) -> Callable[[list[str]], bool]:
    raw = request.query.get("receiver")
    if not raw:
        return lambda _: True
    try:
        pattern = re.compile(raw)
    except re.error as exc:
        raise web.HTTPBadRequest(text=f"bad receiver regex: {exc}") from None
    return lambda receivers: any(pattern.fullmatch(r) for r in receivers)
