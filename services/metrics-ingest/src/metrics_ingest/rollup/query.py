"""``GET /api/v1/series`` parameters, checked before any query runs (4xx with a reason).

- ``name``: the metric name (required).
- ``match``: repeatable label matchers ``label="value"`` or ``label!="value"``
  (quotes optional).
- ``start``, ``end``: epoch seconds or RFC 3339; default the last hour up to now.
- ``step``: seconds or a duration (``30s``, ``5m``, ``1h``); a multiple of a configured
  window size; default the smallest window. Rollups of the largest window size dividing
  the step are re-aggregated into step-sized buckets.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opsmesh.durations import parse_duration

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# The matcher grammar: a label, ``=`` or ``!=``, then a value that may be quoted and
# padded with whitespace but holds no line break of its own. This is the OpenAPI
# document's ``pattern``, so clients may validate with it: written so that no two
# neighbouring parts can match the same character, a backtracking engine (Python's,
# ECMAScript's) decides it in linear time. The earlier ``\s*"?(.*?)"?\s*$`` was cubic in
# the runs of whitespace: 2,000 spaces held the event loop for 20 s.
MATCHER_PATTERN = r"^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(!=|=)\s*(\S([^\n]*\S)?\s*)?$"
# The parser needs no regex past the operator: the rest is stripped, then unquoted.
_MATCHER_HEAD = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(!=|=)")
MAX_MATCHER_LENGTH = 2048  # as the OpenAPI document says
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
MAX_POINTS = 11_000  # per series, as Prometheus bounds a range query
MAX_MATCHERS = 20
# 9999-12-31T23:59:59Z: PostgreSQL's timestamps go further, but nothing is stored past it;
# a bound here turns an absurd time or step into a 400 instead of an out-of-range 500.
MAX_EPOCH_S = 253_402_300_799.0


class QueryError(enum.StrEnum):
    MISSING_NAME = "missing_name"
    BAD_NAME = "bad_name"
    BAD_MATCHER = "bad_matcher"
    BAD_TIME = "bad_time"
    BAD_RANGE = "bad_range"
    BAD_STEP = "bad_step"
    TOO_MANY_POINTS = "too_many_points"


class BadQuery(ValueError):
    def __init__(self, reason: QueryError, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    name: str
    equal: Mapping[str, str]
    not_equal: Mapping[str, str]
    start: float
    end: float
    step: float
    window_s: float


def parse_query(
    params: Mapping[str, str],
    matchers: Sequence[str],
    *,
    now: float,
    window_sizes: Sequence[float],
) -> SeriesQuery:
    name = params.get("name")
    if not name:
        raise BadQuery(QueryError.MISSING_NAME, "name is required")
    if not _NAME.match(name) or len(name) > 200:
        raise BadQuery(QueryError.BAD_NAME, f"{name!r} is not a metric name")
    if len(matchers) > MAX_MATCHERS:
        raise BadQuery(QueryError.BAD_MATCHER, f"at most {MAX_MATCHERS} matchers")
    equal: dict[str, str] = {}
    not_equal: dict[str, str] = {}
    for text in matchers:
        label, op, value = parse_matcher(text)
        (equal if op == "=" else not_equal)[label] = value
    end = _time(params.get("end"), now, "end")
    start = _time(params.get("start"), end - 3600.0, "start")
    if end <= start:
        raise BadQuery(QueryError.BAD_RANGE, "end must be after start")
    sizes = sorted(window_sizes)
    step = _duration(params["step"]) if params.get("step") else sizes[0]
    fitting = [s for s in sizes if _multiple(step, s)]
    if not fitting:
        known = ", ".join(f"{s:g}s" for s in sizes)
        raise BadQuery(
            QueryError.BAD_STEP, f"step {step:g}s is not a multiple of a window size ({known})"
        )
    if (end - start) / step > MAX_POINTS:
        raise BadQuery(
            QueryError.TOO_MANY_POINTS, f"more than {MAX_POINTS} points; use a larger step"
        )
    return SeriesQuery(name, equal, not_equal, start, end, step, fitting[-1])


def parse_matcher(text: str) -> tuple[str, str, str]:
    """``label="value"`` → (label, operator, value), in one pass over ``text``: leading and
    trailing whitespace go, then one opening and one closing quote (``"a"``, ``a"`` and
    ``"a`` are all ``a``; whitespace inside quotes stays)."""
    head = _MATCHER_HEAD.match(text) if len(text) <= MAX_MATCHER_LENGTH else None
    value = text[head.end() :].strip() if head is not None else ""
    value = value.removeprefix('"').removesuffix('"')
    if head is None or "\n" in value or "\x00" in text:
        shown = text if len(text) <= 100 else text[:100] + "…"
        raise BadQuery(
            QueryError.BAD_MATCHER,
            f'{shown!r}: expected label="value" on one line, '
            f"at most {MAX_MATCHER_LENGTH} characters",
        )
    return head.group(1), head.group(2), value


def _multiple(step: float, size: float) -> bool:
    ratio = step / size
    return ratio >= 1 - 1e-9 and abs(ratio - round(ratio)) < 1e-9


def _time(text: str | None, default: float, what: str) -> float:
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise BadQuery(
                QueryError.BAD_TIME, f"{what}={text!r}: epoch seconds or RFC 3339"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        value = parsed.timestamp()
    if not math.isfinite(value) or not 0 <= value <= MAX_EPOCH_S:
        raise BadQuery(
            QueryError.BAD_TIME, f"{what}={text!r} is out of range (1970 to 9999, in UTC)"
        )
    return value


def _duration(text: str) -> float:
    stripped = text.strip()
    try:
        value = float(stripped) if _SECONDS.fullmatch(stripped) else parse_duration(stripped)
    except ValueError:
        raise BadQuery(
            QueryError.BAD_STEP, f"step={text!r}: seconds or a duration like 30s"
        ) from None
    if not 0 < value <= MAX_EPOCH_S:
        raise BadQuery(QueryError.BAD_STEP, "step must be positive and at most 9999 years")
    return value
