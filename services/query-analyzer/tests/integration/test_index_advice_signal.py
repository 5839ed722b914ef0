"""Validated index advice becomes a ``query_index_advised`` signal (real PostgreSQL 15 +
HypoPG target): the advice the built-in rule MissingIndexAdvised alerts on."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from opsmesh import catalogue
from opsmesh.db.pool import open_pool
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.consumer import Received
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock
from query_analyzer.core.fingerprint import fingerprint
from query_analyzer.pipeline.analysis import AnalysisConfig, Analyzer
from query_analyzer.pipeline.signals import MemorySignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.stats import QueryStats
from query_analyzer.target.explain import TargetDatabase

from .conftest import Target

pytestmark = pytest.mark.integration

UNINDEXED = "SELECT * FROM orders WHERE customer_id = {}"  # no index on customer_id
CHEAP = "SELECT * FROM countries WHERE name = 'country-{}'"  # too cheap to advise on
# A month back: the other command tests look back a day from the wall clock, so they
# never see these statistics (and this test's lookback sees none of theirs' advice).
MONTH = 30 * 86400


class _Message:
    def __init__(self, topic: str, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[Any]:
    pool = await open_pool(infra.pg_dsn, name="qa-advice", max_size=4)
    yield pool
    await pool.close()


async def test_validated_index_advice_is_signalled_as_the_catalogue_declares(
    pool: Any, target: Target
) -> None:
    clock = FakeClock(time.time() - MONTH)
    signals = MemorySignalSink()
    stage = StatsStage(
        pool=pool,
        stats=QueryStats(pool),
        findings=FindingStore(pool),
        signals=signals,
        consumer=f"advice.{uuid.uuid4().hex[:6]}",
        registry=CollectorRegistry(),
        clock=clock,
    )
    now = clock.now()
    events = [
        SlowQueryObserved(
            sql=(UNINDEXED if i % 2 else CHEAP).format(i),
            duration_ms=200 + i,
            database=target.name,
            application="shop",
            started_at=now - 60 + i,
        )
        for i in range(20)
    ]
    topic = f"advice.{uuid.uuid4().hex[:6]}"
    await stage.handle([Received(e, _Message(topic, i)) for i, e in enumerate(events)])
    clock.advance(1)
    analyzer = Analyzer(
        pool=pool,
        signals=signals,
        clock=clock,
        config=AnalysisConfig(lookback_s=3600),
        target=TargetDatabase(target.dsn),
        target_database=target.name,
    )
    report = await analyzer.run_once()

    spec = catalogue.QUERY_INDEX_ADVISED
    unindexed = fingerprint(UNINDEXED.format(1)).value
    advised = [s for s in signals.published if s.name == spec.name]
    assert [s.labels["fingerprint"] for s in advised] == [unindexed]  # not the cheap query
    [signal] = advised
    assert catalogue.problems(signal) == []
    assert signal.labels["table"].split(".")[-1] == "orders"
    assert signal.labels["columns"] == "customer_id"
    assert signal.labels["database"] == target.name
    assert signal.stats["cost_after"] < signal.stats["cost_before"] / 2
    assert signal.value == pytest.approx(
        1 - signal.stats["cost_after"] / signal.stats["cost_before"]
    )
    [recommended] = [r for r in report.recommendations if r.fingerprint == unindexed]
    assert recommended.validated
    assert recommended.ddl is not None
    assert recommended.ddl in (signal.detail or "")
