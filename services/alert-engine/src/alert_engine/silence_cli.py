"""``opsmesh silence add|list|expire``: silences on a running alert-engine, as amtool
manages them on an Alertmanager (which also works against the engine's ``/api/v2``).

Writes need a token with the write scope: ``--token`` or ``$ALERT_ENGINE_TOKEN``.
"""

from __future__ import annotations

import getpass
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import click

from alert_engine.core.matchers import (
    Matcher,
    MatcherError,
    MatchType,
    format_matchers,
    parse_matcher,
)
from alert_engine.core.validation import END_EPOCH
from opsmesh.durations import parse_duration

_URL = click.option(
    "--url",
    envvar="ALERT_ENGINE_URL",
    default="http://127.0.0.1:8082",
    show_default=True,
    help="The alert-engine ($ALERT_ENGINE_URL).",
)
_TOKEN = click.option(
    "--token", envvar="ALERT_ENGINE_TOKEN", help="Bearer token ($ALERT_ENGINE_TOKEN)."
)


def _call(url: str, path: str, token: str | None, method: str = "GET", body: Any = None) -> Any:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(  # noqa: S310 - the operator's own engine
        f"{url.rstrip('/')}{path}", data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{exc.code}: {exc.read().decode(errors='replace')}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@click.group()
def silence() -> None:
    """Add, list and expire silences on a running alert-engine."""


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", "-d", default="1h", show_default=True, help="e.g. 30m, 2h, 1d.")
@click.option("--comment", "-c", required=True, help="Why (shown to everyone who looks).")
@click.option("--author", "-a", default=getpass.getuser, help="Who (default: your login).")
@_URL
@_TOKEN
def add(
    matchers: tuple[str, ...],
    *,
    duration: str,
    comment: str,
    author: str,
    url: str,
    token: str | None,
) -> None:
    """Silence alerts matching every MATCHER (name="value", with = != =~ or !~) from now
    for --duration; prints the new silence's id."""
    try:
        parsed = [parse_matcher(m) for m in matchers]
        seconds = parse_duration(duration)
    except (MatcherError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise click.BadParameter("--duration must be positive")
    now = time.time()
    if now + seconds >= END_EPOCH:
        raise click.BadParameter("--duration must end before the year 10000")
    created = _call(
        url,
        "/api/v1/silences",
        token,
        method="POST",
        body={
            "matchers": [
                {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
                for m in parsed
            ],
            "startsAt": _rfc3339(now),
            "endsAt": _rfc3339(now + seconds),
            "createdBy": author,
            "comment": comment,
        },
    )
    click.echo(created["id"])


@silence.command("list")
@click.option("--expired", is_flag=True, help="Show expired silences too.")
@_URL
@_TOKEN
def list_silences(expired: bool, url: str, token: str | None) -> None:
    """Silences with their state, matchers, end and author."""
    for s in _call(url, "/api/v1/silences", token):
        state = s["status"]["state"]
        if state == "expired" and not expired:
            continue
        matchers = format_matchers(
            Matcher(m["name"], _OPS[(m["isEqual"], m["isRegex"])], m["value"])
            for m in s["matchers"]
        )
        click.echo(f"{s['id']}  {state:<7}  {matchers}  until {s['endsAt']}  by {s['createdBy']}")


# Alertmanager's API spells a matcher's operator as (isEqual, isRegex).
_OPS = {
    (True, False): MatchType.EQUAL,
    (False, False): MatchType.NOT_EQUAL,
    (True, True): MatchType.REGEX,
    (False, True): MatchType.NOT_REGEX,
}


@silence.command("expire")
@click.argument("silence_ids", nargs=-1, required=True)
@_URL
@_TOKEN
def expire(silence_ids: tuple[str, ...], url: str, token: str | None) -> None:
    """Expire the silences SILENCE_IDS now."""
    for silence_id in silence_ids:
        _call(url, f"/api/v1/silences/{silence_id}", token, method="DELETE")
        click.echo(f"expired {silence_id}")
