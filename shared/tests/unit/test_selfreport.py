"""The mesh's own readings as signals: dead letters from the DLQ counter, lag per partition."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from opsmesh import catalogue
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason
from opsmesh.selfreport import (
    ConsumedGroup,
    KafkaLagReader,
    PartitionLag,
    SelfReporter,
    dead_letter_signals,
    lag_signals,
)
from opsmesh_dev.infra.process import free_port
from opsmesh_dev.testing.clock import FakeClock


def _counter() -> Any:
    # The DLQ publisher's own counter: the reporter reads what the kit counts.
    return DeadLetterPublisher(
        producer=None,  # type: ignore[arg-type]  # sending is not exercised
        service="notifier",
        clock=FakeClock(),
        registry=CollectorRegistry(),
    ).records_total


def test_dead_letters_are_summed_per_source_topic_and_consumed_topics_start_at_zero() -> None:
    counter = _counter()
    counter.labels("opsmesh.notifications", DeadLetterReason.DELIVERY_FAILED.value).inc(3)
    counter.labels("opsmesh.notifications", DeadLetterReason.SCHEMA_VIOLATION.value).inc(2)
    counter.labels("opsmesh.other", DeadLetterReason.SCHEMA_VIOLATION.value).inc()
    signals = dead_letter_signals(
        counter,
        service="notifier",
        instance="n-1",
        topics=["opsmesh.notifications", "opsmesh.idle"],
        now=5.0,
    )
    by_topic = {s.labels["source_topic"]: s for s in signals}
    assert {t: s.value for t, s in by_topic.items()} == {
        "opsmesh.idle": 0.0,
        "opsmesh.notifications": 5.0,
        "opsmesh.other": 1.0,
    }
    for signal in signals:
        assert signal.name == catalogue.MESH_DEAD_LETTERS.name
        assert catalogue.problems(signal) == []
        assert signal.labels["service"] == "notifier"
        assert signal.labels["instance"] == "n-1"
        assert signal.observed_at == 5.0


def test_lag_signals_name_group_topic_and_partition() -> None:
    signals = lag_signals({("g", "t", 3): 40, ("g", "t", 0): 0}, service="svc", now=1.0)
    assert [(s.labels["partition"], s.value) for s in signals] == [("0", 0.0), ("3", 40.0)]
    for signal in signals:
        assert catalogue.problems(signal) == []
        assert signal.labels["group"] == "g"
        assert signal.labels["service"] == "svc"


class _Lag:
    def __init__(self) -> None:
        self.asked: list[Sequence[ConsumedGroup]] = []

    async def lag(self, groups: Sequence[ConsumedGroup]) -> PartitionLag:
        self.asked.append(groups)
        return {(g.group, t, 0): 7 for g in groups for t in g.topics}


class _Producer:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[Any] = []
        self.fail = fail
        self.two_reports = asyncio.Event()

    async def publish_many(self, items: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("broker away")
        self.sent.extend(items)
        if len(self.sent) >= 4:  # two reports of two readings
            self.two_reports.set()


async def test_the_reporter_reports_every_interval_and_survives_a_failed_report() -> None:
    producer = _Producer(fail=1)
    lag = _Lag()
    reporter = SelfReporter(
        service="alert-engine",
        instance="a-1",
        dead_letters=_counter,
        groups=lambda: [ConsumedGroup("opsmesh.alert-engine", ("opsmesh.signals",))],
        lag=lag,
        producer=lambda: producer,  # type: ignore[arg-type, return-value]
        clock=FakeClock(100.0),
        interval_s=0.01,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(reporter.run(stop))
    async with asyncio.timeout(10):
        await producer.two_reports.wait()
    stop.set()
    await task
    names = {o.event.name for o in producer.sent}
    assert names == {catalogue.MESH_DEAD_LETTERS.name, catalogue.MESH_CONSUMER_LAG.name}
    assert len(lag.asked) >= 3  # the failed report was tried again at the next interval
    assert all(o.key == o.event.subject for o in producer.sent)


class _Hanging:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def lag(self, groups: Sequence[ConsumedGroup]) -> PartitionLag:
        self.started.set()
        await asyncio.Event().wait()  # a broker that never answers
        raise AssertionError("unreachable")


async def test_stop_abandons_a_report_in_flight() -> None:
    lag = _Hanging()
    reporter = SelfReporter(
        service="s",
        instance="i",
        dead_letters=_counter,
        groups=lambda: [ConsumedGroup("g", ("t",))],
        lag=lag,
        producer=_Producer,  # type: ignore[arg-type]
        clock=FakeClock(),
        interval_s=0.01,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(reporter.run(stop))
    async with asyncio.timeout(10):
        await lag.started.wait()
        stop.set()
        await task  # returns: the hanging report is cancelled, not awaited
    assert task.exception() is None


async def test_the_lag_reader_closes_its_clients_when_the_broker_is_away() -> None:
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(str(context.get("message"))))
    try:
        reader = KafkaLagReader({"bootstrap_servers": f"127.0.0.1:{free_port()}"}, timeout_s=10)
        with pytest.raises(KafkaError):
            await reader.lag([ConsumedGroup("g", ("t",))])
        gc.collect()  # an unclosed aiokafka client reports itself when collected
    finally:
        loop.set_exception_handler(previous)
    assert not [m for m in reported if "Unclosed" in m]
