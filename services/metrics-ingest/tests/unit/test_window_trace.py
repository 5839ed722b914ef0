"""A window's signal continues the trace of the record whose sample opened the window."""

from __future__ import annotations

from metrics_ingest.pipeline.signals import to_signal
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from opsmesh.events.metrics import MetricSampled
from opsmesh.tracing.context import new_trace

T0 = 1_700_000_400.0
P0: tuple[str, int] = ("opsmesh.metrics", 0)


def headers(traceparent: bytes | None) -> list[tuple[str, bytes]]:
    found = [("ce_type", b"dev.opsmesh.metric.sampled")]
    return found if traceparent is None else [*found, ("traceparent", traceparent)]


def test_the_first_sample_of_a_window_gives_its_trace() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0))
    first, second, third = new_trace(), new_trace(), new_trace()
    gauge = MetricSampled(name="cpu", value=1.0, labels={"host": "a"}, sampled_at=T0)
    rollups.add(gauge, P0, 0, None, headers(first.header().encode()))
    rollups.add(gauge, P0, 1, None, headers(second.header().encode()))
    later = MetricSampled(name="cpu", value=1.0, labels={"host": "a"}, sampled_at=T0 + 10)
    rollups.add(later, P0, 2, None, headers(None))  # opens the next window: no trace
    rollups.add(later, P0, 3, None, headers(third.header().encode()))
    closed = rollups.close_due(T0 + 100) + rollups.close_due(T0 + 200)
    assert [w.origin for w in closed] == [first.header().encode(), None]
    signals = [to_signal(w, T0 + 100) for w in closed]
    assert signals[0].trace == first
    assert signals[1].trace is None  # the producer starts a trace


def test_an_invalid_traceparent_is_not_continued() -> None:
    rollups = Rollups(WindowConfig((10.0,), 0.0, 0.0))
    gauge = MetricSampled(name="cpu", value=1.0, sampled_at=T0)
    rollups.add(gauge, P0, 0, None, headers(b"00-zz-not-a-trace"))
    [window] = rollups.close_due(T0 + 100) + rollups.close_due(T0 + 200)
    assert to_signal(window, T0 + 100).trace is None
