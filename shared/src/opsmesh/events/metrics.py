"""Metric samples, as applications publish them."""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar

import msgspec

from opsmesh.events.base import EpochSeconds, Event, Labels

MetricName = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", max_length=200)]


class MetricKind(enum.StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Bucket(msgspec.Struct, frozen=True):
    """A cumulative histogram bucket: ``count`` observations were <= ``le``."""

    le: float
    count: Annotated[float, msgspec.Meta(ge=0)]


class MetricSampled(Event, kw_only=True, frozen=True):
    EVENT_TYPE: ClassVar[str] = "dev.opsmesh.metric.sampled"
    SCHEMA_VERSION: ClassVar[int] = 1

    name: MetricName
    kind: MetricKind = MetricKind.GAUGE
    value: float
    labels: Labels = msgspec.field(default_factory=dict)
    sampled_at: EpochSeconds
    # Histograms only: cumulative buckets and the observation count (``value`` is the sum).
    buckets: Annotated[list[Bucket], msgspec.Meta(max_length=64)] | None = None
    count: Annotated[float, msgspec.Meta(ge=0)] | None = None
