"""Ages and instants as the pages show them."""

from __future__ import annotations

from datetime import UTC, datetime


def age(seconds: float) -> str:
    """The two largest units: ``45s``, ``3m12s``, ``2h5m``, ``4d3h``; never negative
    (a start stamped a little ahead of this clock reads ``0s``)."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    shown = parts[:2]
    if len(shown) == 2 and shown[1][0] == 0:
        shown = shown[:1]
    return "".join(f"{n}{unit}" for n, unit in shown)


def instant(at: datetime | float) -> str:
    """UTC, to the second: ``2026-12-06 04:03:21Z``."""
    when = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
