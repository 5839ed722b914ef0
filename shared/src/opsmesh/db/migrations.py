"""Versioned schema migrations, applied at start and by ``opsmesh migrate``.

Each component ships numbered SQL files (``0001_name.sql``) in a package. Applied
versions are recorded with a checksum; an applied file that changed is an error, since
migrations are immutable once shipped. An advisory lock lets replicas start together.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import entry_points

import psycopg

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x6F70736D657368  # "opsmesh"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str) -> list[Migration]:
    found = []
    for entry in resources.files(package).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(
            f"{package}: migration versions must be 1..n without gaps, got {versions}"
        )
    return found


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS opsmesh_schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
);
CREATE TABLE IF NOT EXISTS opsmesh_applied_offsets (
    consumer    text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
)
"""


async def apply_migrations(dsn: str, component: str, package: str) -> list[int]:
    """Apply pending migrations of ``component``; returns the versions applied now."""
    migrations = load_migrations(package)
    applied_now: list[int] = []
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=False)
    async with connection as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        await conn.execute(_BOOKKEEPING.encode())
        cursor = await conn.execute(
            "SELECT version, checksum FROM opsmesh_schema_migrations WHERE component = %s",
            (component,),
        )
        done = {row[0]: row[1] for row in await cursor.fetchall()}
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{component} migration {migration.version:04d}_{migration.name} "
                        "changed after it was applied; add a new migration instead"
                    )
                continue
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO opsmesh_schema_migrations (component, version, name, checksum)"
                " VALUES (%s, %s, %s, %s)",
                (component, migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration.version)
    return applied_now


def registered_components() -> dict[str, str]:
    """Every installed component's migrations package, from ``opsmesh.migrations`` entry points."""
    return {ep.name: ep.value for ep in entry_points(group="opsmesh.migrations")}


async def apply_all(dsn: str) -> dict[str, list[int]]:
    return {
        component: await apply_migrations(dsn, component, package)
        for component, package in sorted(registered_components().items())
    }
