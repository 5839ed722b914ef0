"""A target database with a realistic schema, built once per session.

Big enough (300k orders, 200k customers) that the planner prefers an index when a
useful one exists; ``ANALYZE``d so its estimates are real. A second database without
HypoPG checks the unvalidated path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.demo_db import ANALYZE, HYPOPG, SHOP_TABLES, dsn_for

# The demo shop (opsmesh_dev.tools.demo_db) plus a table of its own for these tests.
SCHEMA = "\n".join(
    [
        HYPOPG,
        SHOP_TABLES,
        """
CREATE TABLE events (
    id bigint PRIMARY KEY, account_id int NOT NULL, kind text NOT NULL, payload text
);
INSERT INTO events SELECT g, g % 20000, 'k' || g % 10, repeat('x', 40)
FROM generate_series(1, 300000) g;
""",
        ANALYZE,
    ]
)


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    dsn: str
    no_hypopg_dsn: str


@pytest.fixture(scope="session")
def target(infra: Endpoints) -> Iterator[Target]:
    name = f"qa_target_{uuid.uuid4().hex[:8]}"
    plain = f"{name}_plain"
    with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
        for db in (name, plain):
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(dsn_for(infra.pg_dsn, name), autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
    with psycopg.connect(dsn_for(infra.pg_dsn, plain), autocommit=True) as conn:
        conn.execute(SCHEMA.replace(HYPOPG, ""))  # type: ignore[arg-type]
    try:
        yield Target(name, dsn_for(infra.pg_dsn, name), dsn_for(infra.pg_dsn, plain))
    finally:
        with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
            for db in (name, plain):
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
                )
