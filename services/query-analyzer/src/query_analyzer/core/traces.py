"""Spans of requests still in progress, kept across consumer batches.

A request's queries rarely arrive in one consumer batch (a poll ends at 5,000 records or
when the broker has nothing more), and there is no "request finished" event. So each
trace's spans are collected until none arrived for ``settle_s`` (processing time), and only
then read for N+1 runs, as Sentry reads a finished transaction. The buffer is bounded:
beyond ``max_spans`` the longest-quiet traces are read early.

Each trace also folds the W3C trace contexts of the records that brought its spans
(``FanIn``: the newest is the parent of the N+1 signal it may become, other traces links).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from opsmesh.tracing.context import FanIn, TraceContext
from query_analyzer.core.nplusone import QuerySpan

Context = tuple[str, str]  # (database, application) of the trace


@dataclass(slots=True)
class SettledTrace:
    trace_id: str
    context: Context
    spans: list[QuerySpan] = field(default_factory=list)
    last_seen: float = 0.0
    origin: FanIn = field(default_factory=FanIn)  # the records' trace contexts


class TraceBuffer:
    def __init__(self, settle_s: float = 5.0, max_spans: int = 200_000) -> None:
        if settle_s < 0 or max_spans <= 0:
            raise ValueError("settle_s must be >= 0 and max_spans > 0")
        self._settle_s = settle_s
        self._max_spans = max_spans
        # Ordered by last arrival: a trace that gets a span moves to the end.
        self._traces: dict[str, SettledTrace] = {}
        self._spans = 0

    def __len__(self) -> int:
        return self._spans

    def add(
        self, span: QuerySpan, context: Context, now: float, origin: TraceContext | None = None
    ) -> None:
        """``origin``: the trace context of the record that brought the span."""
        trace = self._traces.pop(span.trace_id, None)
        if trace is None:
            trace = SettledTrace(span.trace_id, context)
        trace.spans.append(span)
        trace.origin.add(origin)
        trace.context = context
        trace.last_seen = now
        self._traces[span.trace_id] = trace
        self._spans += 1

    def settled(self, now: float) -> list[SettledTrace]:
        """Take the traces quiet for ``settle_s``, and the quietest beyond the bound."""
        out = []
        cutoff = now - self._settle_s
        spans = self._spans
        # Oldest first, stopping at the first trace to keep: no copy of the whole buffer
        # per call (it is read on every poll, and may hold ``max_spans`` spans).
        for trace in self._traces.values():
            if trace.last_seen > cutoff and spans <= self._max_spans:
                break
            spans -= len(trace.spans)
            out.append(trace)
        for trace in out:
            del self._traces[trace.trace_id]
        self._spans = spans
        return out

    def restore(self, traces: Iterable[SettledTrace]) -> None:
        """Put taken traces back in front (their findings could not be stored)."""
        restored = {t.trace_id: t for t in traces if t.trace_id not in self._traces}
        self._spans += sum(len(t.spans) for t in restored.values())
        self._traces = {**restored, **self._traces}
