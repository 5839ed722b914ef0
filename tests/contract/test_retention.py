"""Storage stays bounded: every table the services create is accounted for in
``docs/services.md`` ("Storage and retention"), every purge job reads an indexed time
column, and the documented settings and defaults are the services' own.

Purge jobs are built as each service builds them, from its default settings; table
names come from the database after every migration, not from this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool
from pydantic_settings import BaseSettings

from alert_engine.pipeline.retention import purge_jobs as alert_engine_jobs
from alert_engine.settings import AlertEngineSettings
from health_aggregator.settings import HealthAggregatorSettings
from health_aggregator.storage.retention import purge_jobs as health_jobs
from notifier.delivery.retention import purge_jobs as notifier_jobs
from notifier.settings import NotifierSettings
from opsmesh.db.retention import DAY_S, PurgeJob
from opsmesh_dev.infra import Endpoints
from query_analyzer.settings import QueryAnalyzerSettings
from query_analyzer.storage.retention import purge_jobs as query_jobs

DOC = Path(__file__).resolve().parents[2] / "docs" / "services.md"
SCHEMAS = ("alert_engine", "health_aggregator", "metrics_ingest", "notifier", "query_analyzer")
_ROW = re.compile(r"^\| `(?P<table>[a-z_.]+)` \|")


def documented() -> dict[str, str]:
    """The retention table's rows by table name."""
    text = DOC.read_text()
    section = text.split("## Storage and retention", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            rows[match["table"]] = line
    return rows


def service_jobs(pool: AsyncConnectionPool) -> list[tuple[PurgeJob, BaseSettings]]:
    """Every service's purge jobs as its composition root builds them, with its settings."""
    alert, notifier = AlertEngineSettings(), NotifierSettings()
    health, query = HealthAggregatorSettings(), QueryAnalyzerSettings()
    builders: list[tuple[BaseSettings, Callable[[], list[PurgeJob]]]] = [
        (
            alert,
            lambda: alert_engine_jobs(
                pool,
                lambda: pytest.fail("the state is not read when building"),
                retention_days=alert.retention_days,
                notification_log_retention_days=alert.notification_log_retention_days,
                absence_forget_after_days=alert.absence_forget_after_days,
            ),
        ),
        (
            notifier,
            lambda: notifier_jobs(pool, delivery_retention_days=notifier.delivery_retention_days),
        ),
        (
            health,
            lambda: health_jobs(
                pool,
                history_retention_days=health.history_retention_days,
                deregister_after_days=health.deregister_after_days,
            ),
        ),
        (
            query,
            lambda: query_jobs(
                pool,
                window_retention_days=query.window_retention_days,
                retention_days=query.retention_days,
            ),
        ),
    ]
    return [(job, settings) for settings, build in builders for job in build()]


def test_every_purge_job_is_documented_with_its_setting_and_default() -> None:
    rows = documented()
    pool = AsyncConnectionPool("postgresql://unused", open=False)
    for job, settings in service_jobs(pool):
        assert job.table in rows, f"{job.table} is purged but not in docs/services.md"
        row = rows[job.table]
        named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
        fields = {
            f.alias: getattr(settings, name)
            for name, f in type(settings).model_fields.items()
            if f.alias in named
        }
        assert fields, f"{job.table}: its row names none of {type(settings).__name__}'s settings"
        setting, value = next(iter(fields.items()))
        assert value * DAY_S == job.retention_s, f"{job.table}: {setting} is not its retention"
        assert f"`{setting}` ({value:g})" in row, f"{job.table}: documented default of {setting}"


@pytest.mark.integration
async def test_every_table_is_accounted_for_and_every_purge_is_indexed(
    infra: Endpoints,
) -> None:
    rows = documented()
    pool = AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=1, open=False)
    async with pool, pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
            " AND n.nspname = ANY(%s)"
            " UNION SELECT c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'opsmesh\\_%%'",
            (list(SCHEMAS),),
        )
        tables = {r[0] for r in await cursor.fetchall()}
        assert tables == set(rows), (
            "docs/services.md must list exactly the tables the migrations create: "
            f"missing {sorted(tables - set(rows))}, stale {sorted(set(rows) - tables)}"
        )
        for job, _ in service_jobs(pool):
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_index i"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
                " WHERE i.indrelid = %s::regclass AND a.attname = %s",
                (job.table, job.column),
            )
            row = await cursor.fetchone()
            assert row is not None
            assert row[0] > 0, f"{job.table}: no index leads with {job.column}"
