"""Alertmanager ``time_intervals``: when a route is muted or active.

A spec matches an instant when every field it sets matches (times, weekdays,
days_of_month, months, years, in its location); an interval matches when any of its
specs does. Times are ``HH:MM``, start inclusive, end exclusive; negative days of the
month count from the end (-1 = last day).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Alertmanager's week begins on Sunday: "sunday:saturday" is every day, "monday:sunday" an error.
_WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


class TimeIntervalError(ValueError):
    pass


Range = tuple[int, int]  # inclusive bounds


@dataclass(frozen=True, slots=True)
class TimeSpec:
    times: tuple[Range, ...] = ()  # minutes of day, [start, end)
    weekdays: tuple[Range, ...] = ()  # 0 = Sunday
    days_of_month: tuple[Range, ...] = ()
    months: tuple[Range, ...] = ()  # 1..12
    years: tuple[Range, ...] = ()
    location: str = "UTC"

    def contains(self, epoch_s: float) -> bool:
        at = datetime.fromtimestamp(epoch_s, ZoneInfo(self.location))
        if self.times:
            minute = at.hour * 60 + at.minute
            if not any(start <= minute < end for start, end in self.times):
                return False
        if self.weekdays and not _in((at.weekday() + 1) % 7, self.weekdays):
            return False
        if self.days_of_month:
            last = calendar.monthrange(at.year, at.month)[1]
            if not any(_day_range(r, last, at.day) for r in self.days_of_month):
                return False
        if self.months and not _in(at.month, self.months):
            return False
        return not self.years or _in(at.year, self.years)


def _in(value: int, ranges: Sequence[Range]) -> bool:
    return any(lo <= value <= hi for lo, hi in ranges)


def _day_range(r: Range, last: int, day: int) -> bool:
    lo, hi = (last + 1 + v if v < 0 else v for v in r)
    return max(1, lo) <= day <= min(last, hi)


@dataclass(frozen=True, slots=True)
class TimeInterval:
    name: str
    specs: tuple[TimeSpec, ...]

    def contains(self, epoch_s: float) -> bool:
        return any(spec.contains(epoch_s) for spec in self.specs)


def parse_time_interval(name: str, specs: Sequence[dict[str, object]]) -> TimeInterval:
    return TimeInterval(name, tuple(_parse_spec(name, i, spec) for i, spec in enumerate(specs)))


def _parse_spec(name: str, index: int, raw: dict[str, object]) -> TimeSpec:
    where = f"time interval {name!r} [{index}]"
    known = {"times", "weekdays", "days_of_month", "months", "years", "location"}
    unknown = set(raw) - known
    if unknown:
        raise TimeIntervalError(f"{where}: unknown field(s) {sorted(unknown)}")
    location = str(raw.get("location") or "UTC")
    if location == "Local":
        location = "UTC"
    try:
        ZoneInfo(location)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeIntervalError(f"{where}: unknown location {location!r}") from None
    return TimeSpec(
        times=tuple(_times(where, raw.get("times") or [])),
        weekdays=tuple(
            _ranges(where, raw.get("weekdays") or [], _WEEKDAYS, 0, 6, offset=0, names_only=True)
        ),
        days_of_month=tuple(_ranges(where, raw.get("days_of_month") or [], None, -31, 31)),
        months=tuple(_ranges(where, raw.get("months") or [], _MONTHS, 1, 12, offset=1)),
        years=tuple(_ranges(where, raw.get("years") or [], None, 1, 9999)),
        location=location,
    )


def _times(where: str, items: object) -> list[Range]:
    out = []
    for item in _list(where, items):
        if not isinstance(item, dict) or "start_time" not in item or "end_time" not in item:
            raise TimeIntervalError(f"{where}: times need start_time and end_time")
        start, end = _minute(where, item["start_time"]), _minute(where, item["end_time"])
        if start >= end:
            raise TimeIntervalError(f"{where}: start_time must be before end_time")
        out.append((start, end))
    return out


def _minute(where: str, text: object) -> int:
    # Digits only: int() would also take signs ("10:-5" read as 09:55).
    found = _HHMM.fullmatch(str(text))
    if not found:
        raise TimeIntervalError(f"{where}: bad time {text!r} (want HH:MM)")
    hours, minutes = int(found[1]), int(found[2])
    value = hours * 60 + minutes
    if not 0 <= value <= 24 * 60 or minutes >= 60:
        raise TimeIntervalError(f"{where}: time {text!r} out of range")
    return value


def _ranges(
    where: str,
    items: object,
    names: list[str] | None,
    lo: int,
    hi: int,
    *,
    offset: int = 0,
    names_only: bool = False,
) -> list[Range]:
    out = []
    for item in _list(where, items):
        text = str(item).strip().lower()
        first, _, last = text.partition(":")
        a = _value(where, first, names, offset, names_only)
        b = _value(where, last or first, names, offset, names_only)
        for v in (a, b):
            if not lo <= v <= hi or (v == 0 and lo < 0):
                raise TimeIntervalError(f"{where}: {item!r} out of range")
        if (a >= 0) == (b >= 0) and a > b:
            raise TimeIntervalError(f"{where}: range {item!r} ends before it starts")
        if a < 0 < b:  # as Alertmanager: "-5:5" would be empty in some months only
            raise TimeIntervalError(f"{where}: range {item!r} starts negative but ends positive")
        out.append((a, b))
    return out


def _value(
    where: str, text: str, names: list[str] | None, offset: int, names_only: bool = False
) -> int:
    if names and text in names:
        return names.index(text) + offset
    if names_only:
        raise TimeIntervalError(f"{where}: {text!r} is not a valid name")
    try:
        return int(text)
    except ValueError:
        raise TimeIntervalError(f"{where}: {text!r} is not a valid value") from None


def _list(where: str, items: object) -> list[object]:
    if not isinstance(items, list):
        raise TimeIntervalError(f"{where}: expected a list, got {items!r}")
    return items
