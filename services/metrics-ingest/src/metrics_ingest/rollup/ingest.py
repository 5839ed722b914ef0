"""``POST /api/v1/metrics`` bodies: decode a batch, validate each sample on its own.

A body is ``{"samples": [...]}``; each sample is a ``MetricSampled`` in JSON except that
``sampled_at`` may be called ``timestamp`` and defaults to the receive time, and a
histogram bucket's ``le`` may be ``"+Inf"``, ``"Inf"`` or ``null`` (msgspec encodes +Inf as
null). The ``+Inf`` bucket becomes the sample's ``count``, as the event schema keeps it.
Each rejected sample is reported by index with a named reason.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import msgspec

from opsmesh.events.metrics import Bucket, MetricKind, MetricSampled


class RejectReason(enum.StrEnum):
    SCHEMA_VIOLATION = "schema_violation"
    NOT_FINITE = "not_finite"
    NEGATIVE_COUNTER = "negative_counter"
    MISSING_BUCKETS = "missing_buckets"
    BAD_BUCKETS = "bad_buckets"
    BUCKETS_ON_NON_HISTOGRAM = "buckets_on_non_histogram"
    TOO_FAR_IN_FUTURE = "too_far_in_future"
    TOO_OLD = "too_old"
    UNSTORABLE_TEXT = "unstorable_text"


class BodyError(enum.StrEnum):
    INVALID_JSON = "invalid_json"
    NOT_A_BATCH = "not_a_batch"
    TOO_MANY_SAMPLES = "too_many_samples"


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_samples: int = 10_000
    max_future_s: float = 300.0
    max_age_s: float = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class Parsed:
    samples: list[MetricSampled]
    rejected: list[Rejected]


class BadBody(ValueError):
    def __init__(self, reason: BodyError, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class _WireBucket(msgspec.Struct, frozen=True):
    le: float | str | None
    count: float


class _WireSample(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    value: float
    kind: MetricKind = MetricKind.GAUGE
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    sampled_at: float | None = None
    timestamp: float | None = None
    buckets: list[_WireBucket] | None = None
    count: float | None = None
    schema_version: int = 1


class _Body(msgspec.Struct, frozen=True):
    samples: list[msgspec.Raw]


_BODY = msgspec.json.Decoder(_Body)
_WIRE = msgspec.json.Decoder(_WireSample)
_INF_NAMES = {"+inf", "inf"}


def parse_batch(body: bytes, now: float, limits: IngestLimits) -> Parsed:
    """Raises ``BadBody`` when the body as a whole is unusable."""
    try:
        raw = _BODY.decode(body)
    except msgspec.ValidationError as exc:
        raise BadBody(BodyError.NOT_A_BATCH, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadBody(BodyError.INVALID_JSON, str(exc)) from None
    except RecursionError:
        raise BadBody(BodyError.INVALID_JSON, "JSON nested too deeply") from None
    if len(raw.samples) > limits.max_samples:
        raise BadBody(
            BodyError.TOO_MANY_SAMPLES, f"{len(raw.samples)} samples > limit {limits.max_samples}"
        )
    samples: list[MetricSampled] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(raw.samples):
        result = _one(item, now, limits)
        if isinstance(result, MetricSampled):
            samples.append(result)
        else:
            reason, detail = result
            rejected.append(Rejected(index, reason, detail))
    return Parsed(samples, rejected)


def _one(
    item: msgspec.Raw, now: float, limits: IngestLimits
) -> MetricSampled | tuple[RejectReason, str]:
    try:
        wire = _WIRE.decode(item)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return RejectReason.SCHEMA_VIOLATION, str(exc)
    except RecursionError:
        return RejectReason.SCHEMA_VIOLATION, "JSON nested too deeply"
    if _has_nul(wire.name, wire.labels):
        # PostgreSQL stores no NUL character (text or jsonb): refused here, not by the
        # rollup history long after the sample was acknowledged.
        return RejectReason.UNSTORABLE_TEXT, "names and label values must not contain NUL"
    if not math.isfinite(wire.value):
        return RejectReason.NOT_FINITE, "value must be finite"
    at = wire.sampled_at if wire.sampled_at is not None else wire.timestamp
    at = now if at is None else at
    if at > now + limits.max_future_s:
        return RejectReason.TOO_FAR_IN_FUTURE, f"sampled_at {at} is ahead of now {now:.0f}"
    if at < now - limits.max_age_s:
        return RejectReason.TOO_OLD, f"sampled_at {at} is older than {limits.max_age_s:g}s"
    if wire.kind is MetricKind.COUNTER and wire.value < 0:
        return RejectReason.NEGATIVE_COUNTER, "a counter's value is never negative"
    buckets: list[Bucket] | None = None
    count = wire.count
    if wire.kind is MetricKind.HISTOGRAM:
        if not wire.buckets:
            return RejectReason.MISSING_BUCKETS, "a histogram needs buckets"
        checked = _buckets(wire.buckets, count)
        if isinstance(checked, str):
            return RejectReason.BAD_BUCKETS, checked
        buckets, count = checked
    elif wire.buckets is not None or wire.count is not None:
        return RejectReason.BUCKETS_ON_NON_HISTOGRAM, "buckets and count are for histograms"
    try:
        return msgspec.convert(
            {
                "name": wire.name,
                "kind": wire.kind,
                "value": wire.value,
                "labels": wire.labels,
                "sampled_at": at,
                "buckets": buckets,
                "count": count,
                "schema_version": wire.schema_version,
            },
            MetricSampled,
        )
    except msgspec.ValidationError as exc:
        return RejectReason.SCHEMA_VIOLATION, str(exc)


def _has_nul(name: str, labels: dict[str, str]) -> bool:
    return "\x00" in name or any("\x00" in k or "\x00" in v for k, v in labels.items())


def _le(value: float | str | None) -> float | None:
    if value is None:
        return math.inf
    if isinstance(value, str):
        if value.strip().lower() in _INF_NAMES:
            return math.inf
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _buckets(wire: list[_WireBucket], count: float | None) -> tuple[list[Bucket], float] | str:
    finite: list[Bucket] = []
    inf_count: float | None = None
    previous_le, previous_count = -math.inf, 0.0
    for bucket in wire:
        le = _le(bucket.le)
        if le is None or math.isnan(le):
            return f"bucket bound {bucket.le!r} is not a number or +Inf"
        if le <= previous_le:
            return "bucket bounds must increase"
        if bucket.count < previous_count or bucket.count < 0:
            return "bucket counts are cumulative: they never decrease"
        previous_le, previous_count = le, bucket.count
        if math.isinf(le):
            inf_count = bucket.count
        else:
            finite.append(Bucket(le, bucket.count))
    if count is None:
        count = inf_count if inf_count is not None else previous_count
    if inf_count is not None and count != inf_count:
        return f"count {count} differs from the +Inf bucket {inf_count}"
    if count < previous_count:
        return f"count {count} is below the highest bucket {previous_count}"
    return finite, count
