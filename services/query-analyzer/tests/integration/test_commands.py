"""``opsmesh optimize-queries`` and ``opsmesh create-missing-indexes`` against real
PostgreSQL 15 + HypoPG: the report, the dry run, and ``--apply`` changing the plan."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from opsmesh.cli.main import cli
from opsmesh.db.pool import open_pool
from opsmesh.events.queries import SlowQueryObserved
from opsmesh.kafka.consumer import Received
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock
from query_analyzer.core.plans import index_names
from query_analyzer.pipeline.signals import MemorySignalSink
from query_analyzer.pipeline.stats_stage import StatsStage
from query_analyzer.storage.findings import FindingStore
from query_analyzer.storage.stats import QueryStats

from .conftest import Target

pytestmark = pytest.mark.integration

HOT = "SELECT * FROM events WHERE account_id = {}"
SMALL = "SELECT * FROM countries WHERE name = 'country-{}'"


class _Message:
    def __init__(self, topic: str, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset


async def _seed(dsn: str, database: str) -> None:
    pool = await open_pool(dsn, name="qa-seed", max_size=2)
    try:
        # The commands look back from the wall clock, so the statistics are recent.
        clock = FakeClock(time.time())
        stage = StatsStage(
            pool=pool,
            stats=QueryStats(pool),
            findings=FindingStore(pool),
            signals=MemorySignalSink(),
            consumer=f"seed.{uuid.uuid4().hex[:6]}",
            registry=CollectorRegistry(),
            clock=clock,
        )
        now = clock.now()
        events = [
            SlowQueryObserved(
                sql=(HOT if i % 2 else SMALL).format(i),
                duration_ms=150 + i,
                database=database,
                application="shop",
                started_at=now - 60 + i,
            )
            for i in range(20)
        ]
        topic = f"seed.{uuid.uuid4().hex[:6]}"
        await stage.handle([Received(e, _Message(topic, i)) for i, e in enumerate(events)])
    finally:
        await pool.close()


def _plan_indexes(dsn: str, sql: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()  # type: ignore[call-overload]
        assert row is not None
        return index_names(row[0])


def test_report_dry_run_and_apply(infra: Endpoints, target: Target) -> None:
    asyncio.run(_seed(infra.pg_dsn, target.name))
    base = ["--dsn", infra.pg_dsn, "--target-dsn", target.dsn, "--database", target.name]
    runner = CliRunner()
    ddl = "CREATE INDEX CONCURRENTLY qa_events_account_id_idx ON events (account_id)"

    report = runner.invoke(cli, ["optimize-queries", *base], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    assert "== Top queries by total time ==" in report.output
    assert "SELECT * FROM events WHERE account_id = $1" in report.output
    assert f"{ddl};  -- validated with HypoPG" in report.output
    assert "low_initial_cost" in report.output  # the small table: no index, and why
    assert "sequential scan of events" in report.output  # the plan problem

    dry = runner.invoke(cli, ["create-missing-indexes", *base], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert f"{ddl};" in dry.output
    assert "dry run: nothing created" in dry.output
    assert _plan_indexes(target.dsn, HOT.format(77)) == set()

    applied = runner.invoke(
        cli, ["create-missing-indexes", *base, "--apply"], catch_exceptions=False
    )
    assert applied.exit_code == 0, applied.output
    assert "qa_events_account_id_idx: created_and_used" in applied.output
    assert _plan_indexes(target.dsn, HOT.format(77)) == {"qa_events_account_id_idx"}

    again = runner.invoke(cli, ["create-missing-indexes", *base], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "no missing indexes to create" in again.output


def test_create_missing_indexes_needs_a_target(infra: Endpoints) -> None:
    result = CliRunner().invoke(
        cli,
        ["create-missing-indexes", "--dsn", infra.pg_dsn],
        env={"QUERY_ANALYZER_TARGET_DSN": ""},
    )
    assert result.exit_code == 2
    assert "--target-dsn" in result.output
