"""Request bodies (decoded with msgspec) and response shapes of Alertmanager's API v2.

Sizes are bounded at decode time; what the types cannot say (text PostgreSQL can store,
times within years 1970..9999, regexes in Go's syntax) is checked by ``core/validation.py``
and ``core/regex.py``, and every refusal is a 400 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from alert_engine.core.alerts import StoredAlert
from alert_engine.core.engine import AlertView
from alert_engine.core.matchers import Matcher, MatcherError, parse_matchers
from alert_engine.core.regex import RegexError, anchored
from alert_engine.core.silences import Silence
from alert_engine.core.validation import (
    MAX_COMMENT,
    MAX_CREATED_BY,
    MAX_MATCHER_NAME,
    MAX_MATCHER_VALUE,
    MAX_MATCHERS,
    MAX_SILENCE_ID,
    MAX_URL,
    InvalidInput,
    check_text,
    epoch_of,
    find_unstorable,
    rfc3339,
)

MAX_ALERTS_PER_POST = 10_000
MAX_FILTERS = 64  # filter parameters per request; each may hold several matchers


class PostableAlert(msgspec.Struct, rename="camel"):
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: Annotated[str, msgspec.Meta(max_length=MAX_URL)] = msgspec.field(
        default="", name="generatorURL"
    )


class ApiMatcher(msgspec.Struct, rename="camel"):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MATCHER_NAME)]
    value: Annotated[str, msgspec.Meta(max_length=MAX_MATCHER_VALUE)]
    is_regex: bool
    is_equal: bool = True


class PostableSilence(msgspec.Struct, rename="camel"):
    matchers: Annotated[list[ApiMatcher], msgspec.Meta(min_length=1, max_length=MAX_MATCHERS)]
    starts_at: datetime
    ends_at: datetime
    created_by: Annotated[str, msgspec.Meta(max_length=MAX_CREATED_BY)]
    comment: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT)]
    id: Annotated[str, msgspec.Meta(max_length=MAX_SILENCE_ID)] | None = None


_alerts_decoder = msgspec.json.Decoder(list[PostableAlert])
_silence_decoder = msgspec.json.Decoder(PostableSilence)


def _decode_error(what: str, body: bytes, exc: msgspec.DecodeError) -> web.HTTPBadRequest:
    """A 400 for a body msgspec refused. JSON allows lone surrogates (``"\\ud800"``),
    which msgspec refuses as malformed (by byte offset, or as "truncated"); Python's
    parser accepts them, so such a body is parsed again to name the field holding one."""
    message = f"invalid {what}: {exc}"
    if not isinstance(exc, msgspec.ValidationError) and b"\\u" in body:
        try:
            found = find_unstorable(json.loads(body))
        except (ValueError, RecursionError):
            found = None
        if found is not None:
            path, problem = found
            message = f"invalid {what}: {path}: {problem.value}"
    return web.HTTPBadRequest(text=message)


def decode_alerts(body: bytes) -> list[PostableAlert]:
    try:
        alerts = _alerts_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise _decode_error("alerts", body, exc) from None
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
        raise _decode_error("silence", body, exc) from None
    except RecursionError:  # msgspec's answer to JSON nested past its recursion limit
        raise web.HTTPBadRequest(text="invalid silence: JSON nested too deeply") from None


def to_silence(posted: PostableSilence, now: float) -> Silence:
    matchers = []
    for index, m in enumerate(posted.matchers):
        try:
            matchers.append(Matcher.from_api(m.name, m.value, m.is_regex, m.is_equal))
        except MatcherError as exc:
            raise web.HTTPBadRequest(text=f"matchers[{index}]: {exc}") from None
    try:
        check_text("createdBy", posted.created_by, MAX_CREATED_BY)
        check_text("comment", posted.comment, MAX_COMMENT)
        check_text("id", posted.id or "", MAX_SILENCE_ID)
        starts_at = epoch_of("startsAt", posted.starts_at)
        ends_at = epoch_of("endsAt", posted.ends_at)
    except InvalidInput as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return Silence(
        id=posted.id or "",
        matchers=tuple(matchers),
        starts_at=starts_at,
        ends_at=ends_at,
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
    texts = request.query.getall("filter", [])
    if len(texts) > MAX_FILTERS:
        raise web.HTTPBadRequest(text=f"filter: at most {MAX_FILTERS} filter parameters")
    matchers: list[Matcher] = []
    for text in texts:
        try:
            matchers.extend(parse_matchers(text))
        except MatcherError as exc:
            raise web.HTTPBadRequest(text=f"bad filter {_shown(text)}: {exc}") from None
    return matchers


def receiver_param(request: web.Request) -> Callable[[str], bool]:
    """Alertmanager's ``receiver`` filter: a regex anchored as matchers' are, asked of
    one receiver name."""
    raw = request.query.get("receiver")
    if not raw:
        return lambda _: True
    try:
        matches = anchored(raw)
    except RegexError as exc:
        raise web.HTTPBadRequest(text=f"bad receiver regex: {exc}") from None
    return lambda receiver: bool(matches(receiver))


def _shown(text: str, limit: int = 200) -> str:
    shown = repr(text[:limit])
    return shown if len(text) <= limit else shown + "..."
