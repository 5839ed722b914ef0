"""Prometheus-style durations: ``90s``, ``1m30s``, ``2h``, ``1d``, ``0s``.

The one parser of the mesh (rules, Alertmanager configuration, settings, silences, the
rollup query's ``step``). Units ms s m h d w y; parts follow each other without spaces.
Looser than Prometheus's own: a part may have a fraction (``1.5s``) and parts may come in
any order.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_S = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text``; plain numbers are seconds. Raises ValueError with the input."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration {text!r}")
        return float(text)
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration")
    position = 0
    total = 0.0
    for match in _PART.finditer(stripped):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    if position != len(stripped):
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h30m)")
    return total


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    out = []
    remaining = seconds
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_S[unit]
        if remaining >= size:
            count = int(remaining // size)
            out.append(f"{count}{unit}")
            remaining -= count * size
    if remaining > 1e-9:
        out.append(f"{round(remaining * 1000)}ms")
    return "".join(out)
