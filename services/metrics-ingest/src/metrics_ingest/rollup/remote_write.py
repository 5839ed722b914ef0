"""Prometheus Remote-Write 1.0 bodies: snappy-compressed ``prometheus.WriteRequest``s
turned into the ``MetricSampled`` records HTTP JSON ingest publishes.

One record per sample: the series' ``__name__`` is the metric name, its other labels
the labels, the millisecond timestamp the ``sampled_at``. Remote write carries no type
with a sample (Prometheus sends metadata in requests of its own), so the kind follows
the naming conventions: ``_total``, ``_count``, ``_sum`` and ``_bucket`` series are
counters (their rollups get a reset-aware increase), every other series a gauge. A
classic histogram arrives as those separate series (buckets of one histogram may be
split across requests and shards), so each is rolled up on its own.

What Prometheus sends as a matter of course is skipped, not refused: staleness markers
and other NaN or infinite values (the event topic is JSON, which has no NaN or Inf) and
labels with an empty value (in Prometheus an empty value is the label's absence). What
is wrong with a series or a sample is counted by reason; the handler answers 400 for
those (Prometheus does not retry a 4xx) once the valid samples are published.
"""

from __future__ import annotations

import enum
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import cramjam
from google.protobuf.message import DecodeError

from metrics_ingest.rollup.ingest import IngestLimits
from metrics_ingest.rollup.remote_write_proto import WriteRequest
from opsmesh.events.base import MAX_EPOCH_SECONDS
from opsmesh.events.metrics import MetricKind, MetricSampled, name_problem
from opsmesh.labels import series_id

CONTENT_TYPE = "application/x-protobuf"
PROTO_MESSAGE = "prometheus.WriteRequest"  # the ``proto=`` parameter Remote-Write 2.0 adds
# Prometheus' staleness marker: a NaN with this bit pattern ends a series.
STALE_NAN_BITS = 0x7FF0000000000002
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
MAX_LABELS = 64  # MetricSampled's label limits
MAX_LABEL_NAME = 100
MAX_LABEL_VALUE = 1024
MAX_NAME = 200
MAX_EXAMPLES = 5  # rejections described in an answer; the others are only counted


class BodyProblem(enum.StrEnum):
    """Why a whole request is refused."""

    BAD_SNAPPY = "invalid_snappy"
    BAD_PROTOBUF = "invalid_protobuf"
    TOO_LARGE = "too_large"
    TOO_MANY_SAMPLES = "too_many_samples"


class Skip(enum.StrEnum):
    """Samples dropped as a matter of course (not errors: the request still succeeds)."""

    STALE_MARKER = "stale_marker"
    NOT_FINITE = "not_finite"


class Refusal(enum.StrEnum):
    """Why a series or a sample is refused (the request then answers 400)."""

    MISSING_NAME = "missing_name"
    BAD_NAME = "bad_name"  # the metric or a label name breaks its pattern
    DUPLICATE_LABEL = "duplicate_label"
    TOO_MANY_LABELS = "too_many_labels"
    TOO_LONG = "too_long"  # a name or value beyond MetricSampled's limits
    UNSTORABLE_TEXT = "unstorable_text"  # NUL, which PostgreSQL cannot store
    NATIVE_HISTOGRAM = "native_histogram"
    NEGATIVE_COUNTER = "negative_counter"
    TOO_FAR_IN_FUTURE = "too_far_in_future"
    TOO_OLD = "too_old"


class BadRequest(ValueError):
    def __init__(self, problem: BodyProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


@dataclass(slots=True)
class Decoded:
    samples: list[tuple[str, MetricSampled]] = field(default_factory=list)  # (series id, sample)
    skipped: Counter[Skip] = field(default_factory=Counter)
    refused: Counter[Refusal] = field(default_factory=Counter)  # samples, per reason
    examples: list[str] = field(default_factory=list)  # the first refusals, described

    def refuse(self, reason: Refusal, samples: int, detail: str) -> None:
        self.refused[reason] += samples
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{reason.value}: {detail}"[:300])


def unsnappy(body: bytes, limit: int) -> bytes:
    """The snappy block ``body`` decompressed; refused past ``limit`` bytes before any is
    inflated (the block format states its decompressed length up front)."""
    length = _uvarint(body)
    if length > limit:
        raise BadRequest(BodyProblem.TOO_LARGE, f"decompresses to {length} bytes > {limit}")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise BadRequest(BodyProblem.BAD_SNAPPY, str(exc)[:300]) from None


def _uvarint(data: bytes) -> int:
    value = shift = 0
    for byte in data[:10]:
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
    raise BadRequest(BodyProblem.BAD_SNAPPY, "no snappy block length at the start of the body")


def parse_write_request(raw: bytes, now: float, limits: IngestLimits) -> Decoded:
    """The samples of a decompressed ``WriteRequest``; raises ``BadRequest`` when the
    message does not parse or holds more than ``limits.max_samples`` samples."""
    try:
        request = WriteRequest.FromString(raw)
    except DecodeError as exc:
        raise BadRequest(BodyProblem.BAD_PROTOBUF, f"not a WriteRequest: {exc}"[:300]) from None
    total = sum(len(ts.samples) for ts in request.timeseries)
    if total > limits.max_samples:
        raise BadRequest(
            BodyProblem.TOO_MANY_SAMPLES,
            f"{total} samples > limit {limits.max_samples}: lower queue_config's "
            "max_samples_per_send",
        )
    decoded = Decoded()
    earliest, latest = now - limits.max_age_s, min(now + limits.max_future_s, MAX_EPOCH_SECONDS)
    for series in request.timeseries:
        if series.histograms:
            decoded.refuse(
                Refusal.NATIVE_HISTOGRAM,
                len(series.histograms),
                "native histograms are not ingested (classic buckets are)",
            )
        if not series.samples:
            continue
        identity = _identity(series.labels, len(series.samples), decoded)
        if identity is None:
            continue
        name, labels = identity
        key = series_id(name, labels)
        kind = MetricKind.COUNTER if name.endswith(COUNTER_SUFFIXES) else MetricKind.GAUGE
        for sample in series.samples:
            value = sample.value
            if not math.isfinite(value):
                stale = _bits(value) == STALE_NAN_BITS
                decoded.skipped[Skip.STALE_MARKER if stale else Skip.NOT_FINITE] += 1
                continue
            at = sample.timestamp / 1000.0
            if at > latest:
                decoded.refuse(Refusal.TOO_FAR_IN_FUTURE, 1, f"{key} at {at:.3f} > now {now:.0f}")
                continue
            if at < earliest or at < 0:
                decoded.refuse(Refusal.TOO_OLD, 1, f"{key} at {at:.3f}")
                continue
            if kind is MetricKind.COUNTER and value < 0:
                decoded.refuse(Refusal.NEGATIVE_COUNTER, 1, f"{key} = {value}")
                continue
            decoded.samples.append(
                (
                    key,
                    MetricSampled(name=name, kind=kind, value=value, labels=labels, sampled_at=at),
                )
            )
    return decoded


def _bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def _identity(labels: Any, samples: int, decoded: Decoded) -> tuple[str, dict[str, str]] | None:
    """The series' metric name and labels, checked against ``MetricSampled``'s rules once
    for all its samples; None (the refusal counted) when they break one."""
    name: str | None = None
    out: dict[str, str] = {}
    for label in labels:  # a repeated protobuf field of Label
        key, value = label.name, label.value
        if key in out or (key == "__name__" and name is not None):
            decoded.refuse(Refusal.DUPLICATE_LABEL, samples, f"label {key!r} given twice")
            return None
        if key == "__name__":
            name = value
        elif value:
            out[key] = value
    if not name:
        decoded.refuse(Refusal.MISSING_NAME, samples, "a series needs a __name__ label")
        return None
    # One pass over the labels for the limits and NUL; the refusal is worked out (and the
    # series named) only for a series that breaks one.
    if (
        len(out) > MAX_LABELS
        or len(name) > MAX_NAME
        or "\x00" in name
        or any(
            len(k) > MAX_LABEL_NAME or len(v) > MAX_LABEL_VALUE or "\x00" in k or "\x00" in v
            for k, v in out.items()
        )
    ):
        _refuse_limits(name, out, samples, decoded)
        return None
    problem = name_problem(name, out)
    if problem is not None:
        decoded.refuse(Refusal.BAD_NAME, samples, problem)
        return None
    return name, out


def _refuse_limits(name: str, labels: dict[str, str], samples: int, decoded: Decoded) -> None:
    where = series_id(name, labels)[:200]
    if len(labels) > MAX_LABELS:
        decoded.refuse(Refusal.TOO_MANY_LABELS, samples, f"{where}: more than {MAX_LABELS}")
    elif len(name) > MAX_NAME or any(
        len(k) > MAX_LABEL_NAME or len(v) > MAX_LABEL_VALUE for k, v in labels.items()
    ):
        decoded.refuse(Refusal.TOO_LONG, samples, f"{where}: a name or value is too long")
    else:
        decoded.refuse(Refusal.UNSTORABLE_TEXT, samples, f"{where}: contains NUL")
