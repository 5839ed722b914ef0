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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from alert_engine.core.validation import (
    MAX_URL,
    InvalidInput,
    check_annotations,
    check_labels,
    check_text,
    epoch_of,
    is_go_zero,
)
from opsmesh.labels import fingerprint as label_fingerprint


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
    # The W3C traceparent of what fired this occurrence (a signal, a POST), kept while it
    # lasts: its routing records and notifications continue that trace. "": unknown.
    trace: str = ""

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
    """What the active alerts keep of a new report. A report of an alert still firing keeps the
    trace it has: Prometheus re-sends firing alerts every evaluation, each POST in a
    trace of its own, and the trace belongs to what fired the alert."""
    if old is None:
        return new
    result = merge(old, new, now) if overlaps(old, new) else new
    if old.trace and result.trace != old.trace and not old.resolved(now):
        result = replace(result, trace=old.trace)
    return result


class InvalidAlert(ValueError):
    pass


class Posted(Protocol):
    """What an API client posts (the API's decoded request body)."""

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


def from_posted(
    posted: Posted,
    now: float,
    resolve_timeout_s: float,
    fingerprint: str | None = None,
    trace: str = "",
) -> StoredAlert:
    """Apply ``postAlertsHandler``'s defaults, then validate (``core/validation.py``: label
    names and values, text that can be stored, times within years 1970..9999).
    ``fingerprint``: the label set's, when the caller computed a batch of them at once
    (``opsmesh.labels``); ``trace``: the request's traceparent."""
    try:
        starts = _epoch("startsAt", posted.starts_at)
        ends = _epoch("endsAt", posted.ends_at)
        check_labels("labels", posted.labels)
        check_annotations("annotations", posted.annotations)
        check_text("generatorURL", posted.generator_url, MAX_URL)
    except InvalidInput as exc:
        raise InvalidAlert(str(exc)) from None
    timeout = False
    if starts is None:
        starts = ends if ends is not None else now
    if ends is None:
        timeout = True
        ends = now + resolve_timeout_s
    if not posted.labels:
        raise InvalidAlert("at least one label is required")
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
        trace=trace,
    )


def _epoch(field: str, stamp: datetime | None) -> float | None:
    if stamp is None or is_go_zero(stamp):  # Go's zero time means "unset"
        return None
    return epoch_of(field, stamp)
