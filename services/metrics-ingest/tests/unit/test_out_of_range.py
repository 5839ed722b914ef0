"""Sums past float64's range: windows report finite values (saturated or left out, and
counted), so a signal never carries infinity or NaN (encoded as ``null``, which
alert-engine dead-letters)."""

from __future__ import annotations

import math

import msgspec
import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.pipeline.signals import to_signal
from metrics_ingest.rollup.closed import MAX_FLOAT, ClosedWindow, OutOfRange, saturate
from metrics_ingest.rollup.histogram import bucket_quantile
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from metrics_ingest.testing import MemoryHistory, MemoryPublisher
from opsmesh.catalogue import RollupStat
from opsmesh.events.metrics import Bucket, MetricKind, MetricSampledFields
from opsmesh.kafka.codec import encode
from opsmesh.kafka.consumer import Received
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_400.0
P0 = ("opsmesh.metrics", 0)
HUGE = 1.7e308  # a valid sample; two of them overflow a sum


def sample(
    value: float, at: float, *, kind: MetricKind = MetricKind.GAUGE, **extra: object
) -> MetricSampledFields:
    return MetricSampledFields(
        name="huge", kind=kind, value=value, labels={"k": kind.value}, sampled_at=at, **extra
    )


def close(*samples: MetricSampledFields) -> ClosedWindow:
    rollups = Rollups(WindowConfig((10.0,), allowed_lateness_s=0.0))
    for offset, one in enumerate(samples):
        rollups.add(one, P0, offset)
    assert rollups.close_due(T0 + 9) == []
    (window,) = rollups.close_due(T0 + 20)  # the partition went quiet: the window closes
    return window


def assert_finite(window: ClosedWindow) -> None:
    assert math.isfinite(window.value), window
    assert all(math.isfinite(v) for v in window.stats().values()), window.stats()
    signal = msgspec.json.decode(encode(to_signal(window, T0 + 20).event))
    assert isinstance(signal["value"], float)
    assert all(isinstance(v, float) for v in signal["stats"].values()), signal["stats"]


def test_an_overflowing_sum_saturates_with_its_sign_and_is_flagged() -> None:
    window = close(sample(HUGE, T0), sample(HUGE, T0 + 1), sample(1.0, T0 + 2))
    assert window.total == MAX_FLOAT
    assert window.stats()[RollupStat.MEAN] == MAX_FLOAT / 3
    assert window.out_of_range == ((RollupStat.SUM, OutOfRange.SATURATED),)
    assert_finite(window)
    negative = close(sample(-HUGE, T0), sample(-HUGE, T0 + 1))
    assert negative.total == -MAX_FLOAT
    assert_finite(negative)


def test_a_sum_in_range_is_untouched() -> None:
    window = close(sample(HUGE, T0), sample(-HUGE, T0 + 1), sample(2.0, T0 + 2))
    assert window.total == 2.0
    assert window.out_of_range == ()


def test_an_overflowing_counter_increase_saturates_and_its_rate_is_finite() -> None:
    counter = MetricKind.COUNTER
    window = close(
        sample(-HUGE, T0, kind=counter),
        sample(HUGE, T0 + 1, kind=counter),  # an increase of 3.4e308
        sample(-HUGE, T0 + 2, kind=counter),  # a reset below zero adds nothing
        sample(HUGE, T0 + 3, kind=counter),
    )
    assert window.increase == MAX_FLOAT
    assert window.value == MAX_FLOAT / 10
    assert (RollupStat.INCREASE, OutOfRange.SATURATED) in window.out_of_range
    assert_finite(window)


def test_a_reset_to_a_negative_value_adds_nothing() -> None:
    counter = MetricKind.COUNTER
    window = close(
        sample(5.0, T0, kind=counter),
        sample(8.0, T0 + 1, kind=counter),
        sample(-3.0, T0 + 2, kind=counter),
    )
    assert window.increase == 3.0


def test_histogram_quantiles_across_the_whole_float_range_are_finite() -> None:
    bounds = (-HUGE, HUGE, math.inf)
    assert bucket_quantile(0.5, bounds, [0.0, 10.0, 10.0]) == pytest.approx(0.0, abs=1e295)
    histogram = MetricKind.HISTOGRAM

    def snapshot(at: float, n: float) -> MetricSampledFields:
        buckets = [Bucket(-HUGE, 0.0), Bucket(HUGE, n)]
        return sample(0.0, at, kind=histogram, buckets=buckets, count=n)

    window = close(snapshot(T0, 0.0), snapshot(T0 + 1, 10.0))
    assert window.quantiles, "the quantiles are reported"
    assert_finite(window)


def test_overflowing_bucket_counts_leave_no_nan_quantile() -> None:
    histogram = MetricKind.HISTOGRAM

    def snapshot(at: float, n: float) -> MetricSampledFields:
        return sample(0.0, at, kind=histogram, buckets=[Bucket(1.0, n)], count=n)

    # Each reset adds the whole count: the bucket increases overflow to inf.
    window = close(*(snapshot(T0 + i, HUGE if i % 2 == 0 else 0.0) for i in range(5)))
    assert all(math.isfinite(v) for v in window.quantiles.values())
    assert {action for _, action in window.out_of_range} <= set(OutOfRange)
    assert window.out_of_range, "the overflowing quantiles are flagged"
    assert_finite(window)


def test_saturate() -> None:
    assert saturate(math.inf) == MAX_FLOAT
    assert saturate(-math.inf) == -MAX_FLOAT
    assert saturate(1.5) == 1.5


async def test_the_stage_emits_finite_signals_and_counts_what_it_saturated() -> None:
    registry = CollectorRegistry()
    history, signals = MemoryHistory(), MemoryPublisher()
    clock = FakeClock(T0 + 9)
    stage = RollupStage(
        rollups=Rollups(WindowConfig((10.0,), allowed_lateness_s=0.0)),
        history=history,
        producer=signals,
        clock=clock,
        registry=registry,
    )

    def received(event: MetricSampledFields, offset: int) -> Received[MetricSampledFields]:
        message = ConsumerRecord(P0[0], P0[1], offset, 0, 0, b"k", b"{}", None, -1, 2, ())
        return Received(event, message)

    result = await stage.handle([received(sample(HUGE, T0 + i), i) for i in range(3)])
    assert result.rejected == []
    clock.advance(11)
    await stage.handle([])  # the partition went quiet: the window closes
    (window,) = history.windows
    assert window.total == MAX_FLOAT
    (item,) = signals.items
    signal = msgspec.json.decode(encode(item.event))
    assert signal["value"] == HUGE  # a gauge: its last value
    assert signal["stats"]["sum"] == MAX_FLOAT
    counted = registry.get_sample_value(
        "metrics_ingest_stats_out_of_range_total", {"stat": "sum", "action": "saturated"}
    )
    assert counted == 1.0
