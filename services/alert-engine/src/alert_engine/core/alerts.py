"""Alerts as Alertmanager keeps them: identity, timing, timeouts and merges.

An alert is identified by the fingerprint of its labels. ``ends_at`` None means firing
with no end in sight (alerts from our own rules); an alert posted without ``endsAt``
gets ``now + resolve_timeout`` and resolves when that passes unless refreshed. Repeated
pushes merge as ``alert.Merge`` does: the earliest start is kept, the younger alert's
fields win, the latest explicit resolve time wins, and an explicit end beats a
timeout-derived one.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from opsmesh.labels import fingerprint as label_fingerprint

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_LABELS = 64
MAX_VALUE = 4096


class AlertSource(enum.StrEnum):
    RULE = "rule"  # evaluated here from signals
    API = "api"  # posted to /api/v2/alerts (Prometheus, Grafana, amtool, ...)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None
    updated_at: float
    generator_url: str = ""
    timeout: bool = False
    source: AlertSource = AlertSource.API

    def resolved(self, now: float) -> bool:
        return self.ends_at is not None and self.ends_at <= now

    def end(self) -> float:
        return math.inf if self.ends_at is None else self.ends_at


def merge(old: StoredAlert, new: StoredAlert, now: float) -> StoredAlert:
    """Combine two reports of one alert whose activity ranges overlap."""
    if new.updated_at < old.updated_at:
        old, new = new, old
    result = new
    if old.starts_at < new.starts_at:
        result = replace(result, starts_at=old.starts_at)
    if new.resolved(now):
        if old.resolved(now) and old.end() > new.end():
            result = replace(result, ends_at=old.ends_at)
    elif old.end() > new.end() and not old.timeout:
        result = replace(result, ends_at=old.ends_at)
    return result


def overlaps(old: StoredAlert, new: StoredAlert) -> bool:
    """Alertmanager merges only when the activity ranges overlap; otherwise the new report
    is a new occurrence and replaces the old one."""
    return (old.starts_at < new.end() < old.end()) or (old.starts_at < new.starts_at < old.end())


def accept(old: StoredAlert | None, new: StoredAlert, now: float) -> StoredAlert:
    if old is None:
        return new
    return merge(old, new, now) if overlaps(old, new) else new


class InvalidAlert(ValueError):
    pass


class Posted(Protocol):
    """What an API client posts (``PostedAlert``, or the API's decoded request body)."""

    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def starts_at(self) -> datetime | None: ...
    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def generator_url(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PostedAlert:
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str


def from_posted(
    posted: Posted, now: float, resolve_timeout_s: float, fingerprint: str | None = None
) -> StoredAlert:
    """Apply ``postAlertsHandler``'s defaults, then validate. ``fingerprint``: the label
    set's, when the caller computed a batch of them at once (``opsmesh.labels``)."""
    starts = _epoch(posted.starts_at)
    ends = _epoch(posted.ends_at)
    timeout = False
    if starts is None:
        starts = ends if ends is not None else now
    if ends is None:
        timeout = True
        ends = now + resolve_timeout_s
    validate_labels(posted.labels, "labels")
    if not posted.labels:
        raise InvalidAlert("at least one label is required")
    validate_labels(posted.annotations, "annotations", names_strict=False)
    if ends < starts:
        raise InvalidAlert("endsAt is before startsAt")
    return StoredAlert(
        fingerprint=fingerprint or label_fingerprint(posted.labels),
        labels=dict(posted.labels),
        annotations=dict(posted.annotations),
        starts_at=starts,
        ends_at=ends,
        updated_at=now,
        generator_url=posted.generator_url,
        timeout=timeout,
        source=AlertSource.API,
    )


def validate_labels(labels: Mapping[str, str], what: str, *, names_strict: bool = True) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidAlert(f"{what}: more than {MAX_LABELS} entries")
    known = _VALID_NAMES
    for name, value in labels.items():
        if names_strict:
            if name not in known:
                if not _LABEL_NAME.match(name):
                    raise InvalidAlert(f"{what}: invalid label name {name!r}")
                if len(known) < _VALID_NAMES_MAX:
                    known.add(name)
            if value == "":
                raise InvalidAlert(f"{what}: label {name!r} has an empty value")
        if len(value) > MAX_VALUE:
            raise InvalidAlert(f"{what}: value of {name!r} longer than {MAX_VALUE}")


# Label names already checked against the pattern: a POST repeats a handful of names
# hundreds of times, and the regex was the largest cost of validating it.
_VALID_NAMES: set[str] = set()
_VALID_NAMES_MAX = 4096


def _epoch(stamp: datetime | None) -> float | None:
    if stamp is None or stamp.year <= 1:  # Go's zero time means "unset"
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def rfc3339(epoch: float | None) -> str:
    if epoch is None or math.isinf(epoch):
        return "0001-01-01T00:00:00.000Z"
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def common_labels(label_sets: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not label_sets:
        return {}
    common = dict(label_sets[0])
    for other in label_sets[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common
