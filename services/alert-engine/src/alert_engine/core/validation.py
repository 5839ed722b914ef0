"""What every input boundary checks, in one place: text PostgreSQL can store and the
wire carries, label sets within the events' limits, and times every formatter can print.

PostgreSQL refuses NUL (U+0000) in ``text`` and ``jsonb``, and lone UTF-16 surrogates
(which JSON allows as ``\\ud800``, and YAML as ``"\\ud800"``) cannot be encoded as UTF-8
at all: either one, accepted, stalls whatever later writes it. Label limits are the
events' (``opsmesh.events.base.Labels``), so an alert the API accepts is one the notifier
can decode. Times are kept within years 1970..9999 in UTC: RFC 3339 and Go's time
formatting print four-digit years only, and the events' timestamps are non-negative.

Pure: plain values in, ``InvalidInput`` (naming the field) out.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

MAX_LABELS = 64
MAX_LABEL_NAME = 100  # opsmesh.events.base.LabelName
MAX_LABEL_VALUE = 1024  # opsmesh.events.base.LabelValue
MAX_ANNOTATION_NAME = 1024
MAX_ANNOTATION_VALUE = 4096
MAX_URL = 2048  # generatorURL, as the events carry it
MAX_MATCHER_NAME = 200
MAX_MATCHER_VALUE = 4096  # also the longest regex accepted
MAX_MATCHERS = 64
MAX_CREATED_BY = 256
MAX_COMMENT = 4096
MAX_SILENCE_ID = 128
MAX_PARAMETER = 8192  # a query or path parameter (aiohttp bounds the request line too)

# 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z, as epoch seconds.
MIN_EPOCH = 0.0
END_EPOCH = 253_402_300_800.0  # 10000-01-01T00:00:00Z, excluded
LAST_EPOCH = END_EPOCH - 1  # 9999-12-31T23:59:59Z: what a formatter prints for anything later
RANGE_TEXT = "1970-01-01T00:00:00Z..9999-12-31T23:59:59Z"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)
_END = timedelta(seconds=END_EPOCH)
_LARGEST = math.nextafter(END_EPOCH, 0.0)  # the last float before year 10000

_CLASSIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")


class TextProblem(enum.Enum):
    """Why a text cannot be accepted; the value is the message."""

    NUL = "contains a NUL character (U+0000), which cannot be stored"
    LONE_SURROGATE = "contains a lone UTF-16 surrogate, which is not valid Unicode text"
    TOO_LONG = "is longer than {limit} characters"


class InvalidInput(ValueError):
    """An input value that cannot be accepted; the message names the field and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def text_problem(text: str, max_length: int | None = None) -> TextProblem | None:
    if "\x00" in text:
        return TextProblem.NUL
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return TextProblem.LONE_SURROGATE
    if max_length is not None and len(text) > max_length:
        return TextProblem.TOO_LONG
    return None


def describe(problem: TextProblem, max_length: int | None = None) -> str:
    return problem.value.format(limit=max_length)


def check_text(field: str, text: str, max_length: int | None = None) -> None:
    problem = text_problem(text, max_length)
    if problem is not None:
        raise InvalidInput(field, describe(problem, max_length))


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD: for text the engine
    builds itself (rendered templates), which must never fail to be stored."""
    if text_problem(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text.replace("\x00", "\ufffd"))


def storable_map(values: Mapping[str, str], max_value: int | None = None) -> dict[str, str]:
    return {storable(k): storable(v)[:max_value] for k, v in values.items()}


# Label names already checked: a POST repeats a handful of names hundreds of times, and
# the pattern was the largest cost of validating it.
_VALID_NAMES: set[str] = set()
_VALID_NAMES_MAX = 4096


def is_label_name(name: str) -> bool:
    """A classic (Prometheus) label name: ``[a-zA-Z_][a-zA-Z0-9_]*``, at most 100 chars."""
    if name in _VALID_NAMES:
        return True
    if len(name) > MAX_LABEL_NAME or _CLASSIC_NAME.fullmatch(name) is None:
        return False
    if len(_VALID_NAMES) < _VALID_NAMES_MAX:
        _VALID_NAMES.add(name)
    return True


def check_labels(field: str, labels: Mapping[str, str]) -> None:
    """An alert's labels as Alertmanager's classic mode validates them (valid names,
    non-empty values), within the events' limits."""
    if len(labels) > MAX_LABELS:
        raise InvalidInput(field, f"more than {MAX_LABELS} labels")
    for name, value in labels.items():
        if not is_label_name(name):
            raise InvalidInput(field, f"invalid label name {_shown(name)}")
        if value == "":
            raise InvalidInput(f"{field}.{name}", f"label {name!r} has an empty value")
        problem = text_problem(value, MAX_LABEL_VALUE)
        if problem is not None:
            raise InvalidInput(f"{field}.{name}", describe(problem, MAX_LABEL_VALUE))


def check_annotations(field: str, annotations: Mapping[str, str]) -> None:
    """Annotations: any name (Alertmanager is loose there), empty values allowed."""
    if len(annotations) > MAX_LABELS:
        raise InvalidInput(field, f"more than {MAX_LABELS} annotations")
    for name, value in annotations.items():
        problem = text_problem(name, MAX_ANNOTATION_NAME)
        if problem is not None:
            raise InvalidInput(
                f"{field} name {_shown(name)}", describe(problem, MAX_ANNOTATION_NAME)
            )
        problem = text_problem(value, MAX_ANNOTATION_VALUE)
        if problem is not None:
            raise InvalidInput(f"{field}.{name}", describe(problem, MAX_ANNOTATION_VALUE))


def _shown(text: str, limit: int = 64) -> str:
    """A value for an error message: repr'd (so NUL and surrogates are visible) and short."""
    shown = repr(text[:limit])
    return shown if len(text) <= limit else shown + "..."


# -- times ---------------------------------------------------------------------------


def is_go_zero(stamp: datetime) -> bool:
    """Go's zero time (``0001-01-01T00:00:00Z``), which Alertmanager's clients send for
    "unset"; any time in year 1 counts, whatever its offset."""
    return stamp.year <= 1


def epoch_of(field: str, stamp: datetime) -> float:
    """Epoch seconds of an RFC 3339 time (naive = UTC), within years 1970..9999 in UTC."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    since = stamp - _EPOCH  # exact, where a float could round 9999-12-31T23:59:59.999999 up
    if not _ZERO <= since < _END:
        raise InvalidInput(
            field,
            f"{stamp.isoformat()} is outside the accepted range {RANGE_TEXT} "
            "(after conversion to UTC)",
        )
    return min(since.total_seconds(), _LARGEST)


def check_epoch(field: str, epoch: float | None) -> None:
    if epoch is None:
        return
    if not (math.isfinite(epoch) and MIN_EPOCH <= epoch < END_EPOCH):
        raise InvalidInput(field, f"{epoch!r} is outside the accepted range {RANGE_TEXT}")


def clamp_epoch(epoch: float) -> float:
    """Into the printable range, for values that got stored before they were checked."""
    if math.isnan(epoch) or epoch < MIN_EPOCH:
        return MIN_EPOCH
    return LAST_EPOCH if epoch >= END_EPOCH else epoch


def rfc3339(epoch: float | None) -> str:
    """Alertmanager's rendering (milliseconds, ``Z``); Go's zero time for "none"; any
    other value is clamped into years 1970..9999, so printing never fails."""
    if epoch is None or math.isinf(epoch):
        return "0001-01-01T00:00:00.000Z"
    stamp = datetime.fromtimestamp(clamp_epoch(epoch), UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- nested documents ----------------------------------------------------------------


def find_unstorable(value: object, where: str = "") -> tuple[str, TextProblem] | None:
    """The first string (key or value) in a parsed YAML/JSON document that cannot be
    stored, with its path (``groups[0].rules[1].labels.team``)."""
    stack: list[tuple[object, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return path or "value", problem
        elif isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                name = str(key)
                problem = text_problem(name)
                if problem is not None:
                    return (
                        f"{path} key {_shown(name)}" if path else f"key {_shown(name)}"
                    ), problem
                stack.append((child, f"{path}.{name}" if path else name))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None
