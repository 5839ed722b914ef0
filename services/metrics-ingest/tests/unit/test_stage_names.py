"""Metric and label names are checked once per new series, and a bad one is dead-lettered
by the rollup stage without touching the windows of the good records around it."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from metrics_ingest.pipeline.rollup_stage import RollupStage
from metrics_ingest.rollup.windows import Rollups, SampleOutcome, WindowConfig
from metrics_ingest.testing import MemoryHistory, MemoryPublisher
from opsmesh.events.metrics import MetricSampledFields, name_problem
from opsmesh.kafka.consumer import Received
from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh_dev.testing.clock import FakeClock

T0 = 1_700_000_400.0
P0 = ("opsmesh.metrics", 0)


def sample(name: str, at: float, **labels: str) -> MetricSampledFields:
    return MetricSampledFields(name=name, value=1.0, labels=labels, sampled_at=at)


def received(event: MetricSampledFields, offset: int) -> Received[MetricSampledFields]:
    message = ConsumerRecord(
        P0[0], P0[1], offset, 0, 0, event.name.encode(), b"{}", None, -1, 2, ()
    )
    return Received(event, message)


def test_name_problem_names_the_offending_name() -> None:
    assert name_problem("http_requests_total", {"code": "200"}) is None
    assert "metric name 'bad name'" in (name_problem("bad name", {}) or "")
    assert "label name 'a-b'" in (name_problem("ok", {"a-b": "1"}) or "")


def test_a_new_series_with_a_bad_name_is_rejected_and_moves_no_watermark() -> None:
    rollups = Rollups(WindowConfig((10.0,), allowed_lateness_s=0.0))
    assert rollups.add(sample("cpu", T0, host="a"), P0, 0, b"k") is SampleOutcome.ACCEPTED
    far_future = sample("cpu", T0 + 10_000, **{"bad-label": "x"})
    assert rollups.add(far_future, P0, 1, b"k2") is SampleOutcome.INVALID_NAME
    assert rollups.add(sample("cpu", T0 + 1, host="a"), P0, 2, b"k") is SampleOutcome.ACCEPTED
    assert rollups.close_due(T0 + 2) == [], "the bad sample's time did not close the window"
    assert rollups.series_count() == {"cpu": 1}


async def test_the_stage_dead_letters_bad_names_and_rolls_up_the_rest() -> None:
    clock = FakeClock(T0 + 30)
    history, signals = MemoryHistory(), MemoryPublisher()
    stage = RollupStage(
        rollups=Rollups(WindowConfig((10.0,), allowed_lateness_s=0.0)),
        history=history,
        producer=signals,
        clock=clock,
        registry=CollectorRegistry(),
    )
    batch = [
        received(sample("cpu", T0, host="a"), 0),
        received(sample("bad name", T0 + 1, host="a"), 1),
        received(sample("cpu", T0 + 2, host="a"), 2),
        received(sample("cpu", T0 + 12, host="a"), 3),
    ]
    result = await stage.handle(batch)
    (rejection,) = result.rejected
    assert rejection.reason is DeadLetterReason.SCHEMA_VIOLATION
    assert rejection.raw.offset == 1
    assert "metric name 'bad name'" in rejection.error
    (window,) = history.windows
    assert (window.name, window.start, window.count) == ("cpu", T0, 2)
    assert [item.key for item in signals.items] == [window.series]
