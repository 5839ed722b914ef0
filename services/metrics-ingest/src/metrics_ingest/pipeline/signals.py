"""Closed windows become signals for alert-engine, keyed by series."""

from __future__ import annotations

from metrics_ingest.rollup.cardinality import SeriesRefusal
from metrics_ingest.rollup.closed import ClosedWindow
from opsmesh.catalogue import METRICS_SERIES_LIMITED
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import SIGNALS
from opsmesh.tracing.context import parse_traceparent


def to_signal(window: ClosedWindow, now: float) -> Outgoing:
    """A rollup: named after the metric, stats of its kind (``opsmesh.catalogue.ROLLUPS``).
    Built without a per-signal check: this is the hot path, proven by the contract tests."""
    signal = SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name=window.name,
        subject=window.series,
        labels=dict(window.labels),
        value=window.value,
        stats=window.stats(),
        window_start=window.start,
        window_end=window.end,
        observed_at=now,
    )
    # The id is stable per window, so a re-emitted window is recognisably the same signal.
    event_id = f"{window.series}@{window.end - window.start:g}s@{window.start:.3f}"
    # The trace of the sample that opened the window (an invalid header: a new trace).
    trace = parse_traceparent(window.origin)
    return Outgoing(SIGNALS, window.series, signal, event_id=event_id, trace=trace)


def cardinality_signal(
    name: str, rejected: int, limit: int, now: float, *, limit_name: str | None = None
) -> Outgoing:
    """A metric hit its series limit, or (``name`` "*", ``limit_name`` the
    ``SeriesRefusal``) the group hit a global one: alertable like any signal (value =
    samples rejected)."""
    what = f"of {name}" if limit_name is None else f"(limit {limit_name})"
    signal = METRICS_SERIES_LIMITED.observe(
        subject=name if limit_name is None else f"{name}:{limit_name}",
        labels={"metric": name, "limit": limit_name or SeriesRefusal.PER_METRIC},
        value=float(rejected),
        stats={"limit": float(limit), "rejected": float(rejected)},
        observed_at=now,
        detail=f"{rejected} samples of new series {what} rejected: limit {limit}",
    )
    return Outgoing(SIGNALS, signal.subject, signal)
