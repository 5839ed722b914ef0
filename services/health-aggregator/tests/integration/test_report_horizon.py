"""Reports stamped far ahead of the clock, over real PostgreSQL: dead-lettered with their
reason, and the check keeps following the genuine reports around them.

Accepted, a year-9999 heartbeat never expires, and because an older report never
overrides a newer one (in the owned checks and in the stored row), every genuine report of its
check after it would be ignored for good.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from health_aggregator.core.checks import OwnedChecks
from health_aggregator.pipeline.health_stage import HealthStage
from health_aggregator.storage.checks import CheckStore, partition_of
from opsmesh.db.pool import open_pool
from opsmesh.events.base import MAX_EPOCH_SECONDS
from opsmesh.events.health import HealthReported, HealthStatus
from opsmesh.kafka.codec import encode
from opsmesh.kafka.consumer import Received
from opsmesh.kafka.dlq import DeadLetterReason
from opsmesh.kafka.producer import Outgoing
from opsmesh.topics import HEALTH
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration


@dataclass
class FakeProducer:
    sent: list[Outgoing] = field(default_factory=list)

    async def publish_many(self, items: Iterable[Outgoing]) -> None:
        self.sent.extend(items)


@pytest.fixture
async def store(infra: Endpoints) -> AsyncIterator[CheckStore]:
    pool = await open_pool(infra.pg_dsn, name="tests-health-horizon")
    try:
        yield CheckStore(pool)
    finally:
        await pool.close()


def received(event: HealthReported, offset: int) -> Received[HealthReported]:
    partition = partition_of(event.service, event.instance)
    value = encode(event)
    message = ConsumerRecord(
        HEALTH.name, partition, offset, 0, 0, None, value, None, 0, len(value), ()
    )
    return Received(event, message)


async def test_a_far_future_report_is_dead_lettered_and_the_check_still_expires(
    store: CheckStore, unique: str
) -> None:
    now = time.time()
    clock = FakeClock(now)
    stage = HealthStage(
        owned=OwnedChecks(),
        store=store,
        producer=FakeProducer(),
        clock=clock,
        registry=CollectorRegistry(),
        max_future_s=300.0,
    )
    service = f"horizon-{unique}"

    def beat(at: float, status: HealthStatus = HealthStatus.PASS) -> HealthReported:
        return HealthReported(
            service=service, instance="i-1", status=status, ttl_s=10.0, reported_at=at
        )

    result = await stage.handle(
        [
            received(beat(now), 0),
            received(beat(float(MAX_EPOCH_SECONDS)), 1),
            received(beat(now + 301), 2),
            received(beat(now + 299, HealthStatus.WARN), 3),
        ]
    )
    assert [(r.raw.offset, r.reason) for r in result.rejected] == [
        (1, DeadLetterReason.SCHEMA_VIOLATION),
        (2, DeadLetterReason.SCHEMA_VIOLATION),
    ]
    assert "ahead of this consumer's clock" in result.rejected[0].error
    (stored,) = await store.of_service(service)
    assert stored.status is HealthStatus.WARN
    assert stored.reported_at == pytest.approx(now + 299)

    # Silent past its TTL (counted from the last accepted report): the check fails.
    clock.advance(299 + 11)
    await stage.handle([])
    (stored,) = await store.of_service(service)
    assert stored.status is HealthStatus.FAIL
