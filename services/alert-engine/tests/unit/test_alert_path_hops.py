"""``opsmesh_alert_path_seconds``: the engine's four hops of an alert's way to its page,
each measured from where the previous one ended, in simulated time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from opsmesh.alert_path import NAME, Hop
from opsmesh.events.alerts import AlertsRouted
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import ALERT_GROUPS
from opsmesh_dev.testing.clock import FakeClock

from .test_state_locking import T0, Database, Producer, make_state, posted

KAFKA_ACK_S = 0.01
REDIS_S = 0.2


class SlowProducer(Producer):
    """Kafka acknowledging after ``KAFKA_ACK_S`` of simulated time."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self._clock = clock

    async def enqueue(self, items: Iterable[Outgoing]) -> list[asyncio.Future[Any]]:
        self._clock.advance(KAFKA_ACK_S)
        acks: list[asyncio.Future[Any]] = await super().enqueue(items)
        return acks


class SlowLimiter:
    """Redis answering after ``REDIS_S`` of simulated time."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    async def allow_many(self, receivers: Sequence[str]) -> list[bool]:
        self._clock.advance(REDIS_S)
        return [True for _ in receivers]


def hop(registry: CollectorRegistry, which: Hop) -> tuple[Any, Any]:
    labels = {"hop": which.value}
    count = registry.get_sample_value(f"{NAME}_count", labels) or 0.0
    total = registry.get_sample_value(f"{NAME}_sum", labels) or 0.0
    return count, total


async def test_each_hop_from_post_to_produced_request_is_measured_once() -> None:
    clock = FakeClock(T0)
    producer = SlowProducer(clock)
    registry = CollectorRegistry()
    state = make_state(Database(), producer, clock, SlowLimiter(clock), registry=registry)
    await state.restore()
    await state.assigned(set(range(ALERT_GROUPS.partitions)))  # every group is ours

    await state.post_alerts([posted("Page", T0)])
    assert hop(registry, Hop.INGEST) == (1, pytest.approx(KAFKA_ACK_S))

    batches = [o.event for o in producer.sent if isinstance(o.event, AlertsRouted)]
    sent_at = clock.now()  # the record's Kafka timestamp
    clock.advance(0.05)  # the consumer's fetch and the persist statement
    await state.routed([b"{}"], batches, sent_at=[sent_at])
    assert hop(registry, Hop.PERSIST) == (1, pytest.approx(0.05))

    assert await state.flush() == 0, "group_wait (30 s) has not elapsed"
    assert hop(registry, Hop.FLUSH) == (0, 0)
    clock.advance(30)
    assert await state.flush() == 1
    assert hop(registry, Hop.FLUSH) == (1, pytest.approx(30))
    assert hop(registry, Hop.PRODUCE) == (1, pytest.approx(REDIS_S + KAFKA_ACK_S))

    clock.advance(60)  # nothing new: a repeat is not an alert's first way through
    await state.flush()
    assert hop(registry, Hop.FLUSH)[0] == 1
