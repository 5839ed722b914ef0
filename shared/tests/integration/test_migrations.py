"""Versioned migrations against real PostgreSQL: applied once, immutable, no gaps."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from opsmesh.db.migrations import MigrationError, apply_all, apply_migrations, load_migrations
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    name = f"mig_{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, root
    sys.modules.pop(name, None)


async def test_pending_migrations_apply_once_in_order(infra: Endpoints, package) -> None:
    name, root = package
    table = f"t_{name}"
    (root / "0001_create.sql").write_text(f"CREATE TABLE {table} (id int);")
    (root / "0002_add.sql").write_text(f"ALTER TABLE {table} ADD COLUMN note text;")
    assert await apply_migrations(infra.pg_dsn, name, name) == [1, 2]
    assert await apply_migrations(infra.pg_dsn, name, name) == []
    async with await psycopg.AsyncConnection.connect(infra.pg_dsn) as conn:
        cursor = await conn.execute(
            "SELECT version FROM opsmesh_schema_migrations WHERE component = %s ORDER BY version",
            (name,),
        )
        assert [r[0] for r in await cursor.fetchall()] == [1, 2]
        await conn.execute(f"INSERT INTO {table} (id, note) VALUES (1, 'x')")


async def test_a_changed_applied_migration_is_refused(infra: Endpoints, package) -> None:
    name, root = package
    (root / "0001_create.sql").write_text(f"CREATE TABLE t_{name} (id int);")
    await apply_migrations(infra.pg_dsn, name, name)
    (root / "0001_create.sql").write_text(f"CREATE TABLE t_{name} (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(infra.pg_dsn, name, name)


def test_gaps_in_versions_are_refused(package) -> None:
    name, root = package
    (root / "0001_a.sql").write_text("SELECT 1;")
    (root / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="without gaps"):
        load_migrations(name)


async def test_every_service_registers_migrations_and_they_are_applied(infra: Endpoints) -> None:
    services = {"metrics-ingest", "alert-engine", "notifier", "query-analyzer", "health-aggregator"}
    applied = await apply_all(infra.pg_dsn)
    assert set(applied) == services
    assert all(versions == [] for versions in applied.values()), "the session fixture applied them"
    async with await psycopg.AsyncConnection.connect(infra.pg_dsn) as conn:
        cursor = await conn.execute(
            "SELECT DISTINCT component FROM opsmesh_schema_migrations WHERE component = ANY(%s)",
            (sorted(services),),
        )
        assert {r[0] for r in await cursor.fetchall()} == services
