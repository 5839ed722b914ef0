"""Signals: what the analysing services tell alert-engine.

A signal is one observation about a subject: a closed rollup window of a series, a
query finding, a health status change, or a service's reading of itself (its dead
letters, its consumer lag). Rules match on ``name`` and ``labels``; every signal the
mesh emits is declared in ``opsmesh.catalogue``.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import msgspec

from opsmesh.events.base import EpochSeconds, Event, Labels, Name, Text


class SignalSource(enum.StrEnum):
    METRICS = "metrics"
    QUERIES = "queries"
    HEALTH = "health"
    MESH = "mesh"  # a service reporting on itself (``opsmesh.selfreport``)


class SignalKind(enum.StrEnum):
    ROLLUP = "rollup"
    FINDING = "finding"
    STATUS = "status"


class SignalObserved(Event, kw_only=True, frozen=True):
    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.signal.observed"
    SCHEMA_VERSION: ClassVar[int] = 1

    source: SignalSource
    kind: SignalKind
    name: Name
    subject: Annotated[str, msgspec.Meta(max_length=2048)]
    labels: Labels = msgspec.field(default_factory=dict)
    value: float
    # Window aggregates for rollups (count, sum, min, max, last, rate ...).
    stats: Annotated[dict[str, float], msgspec.Meta(max_length=32)] = msgspec.field(
        default_factory=dict
    )
    window_start: EpochSeconds | None = None
    window_end: EpochSeconds | None = None
    observed_at: EpochSeconds
    detail: Text | None = None
