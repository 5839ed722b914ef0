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

from opsmesh.devinfra import Endpoints

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE countries (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO countries SELECT g, 'country-' || g FROM generate_series(1, 50) g;
CREATE TABLE customers (
    id bigint PRIMARY KEY, email text NOT NULL, country_id int NOT NULL, created_at timestamptz
);
INSERT INTO customers
SELECT g, 'user' || g || '@example.com', 1 + g % 50, now() - (g || ' minutes')::interval
FROM generate_series(1, 200000) g;
CREATE INDEX customers_email ON customers (email);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO orders
SELECT g, 1 + (g::bigint * 7919) % 200000,
       (ARRAY['paid', 'shipped', 'pending', 'refunded'])[1 + g % 4],
       (g % 1000) / 10.0, now() - (g || ' seconds')::interval
FROM generate_series(1, 300000) g;
CREATE TABLE events (
    id bigint PRIMARY KEY, account_id int NOT NULL, kind text NOT NULL, payload text
);
INSERT INTO events SELECT g, g % 20000, 'k' || g % 10, repeat('x', 40)
FROM generate_series(1, 300000) g;
ANALYZE;
"""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    dsn: str
    no_hypopg_dsn: str


def _dsn_for(base: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(base, dbname=database)


@pytest.fixture(scope="session")
def target(infra: Endpoints) -> Iterator[Target]:
    name = f"qa_target_{uuid.uuid4().hex[:8]}"
    plain = f"{name}_plain"
    with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
        for db in (name, plain):
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(_dsn_for(infra.pg_dsn, name), autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
    with psycopg.connect(_dsn_for(infra.pg_dsn, plain), autocommit=True) as conn:
        conn.execute(SCHEMA.replace("CREATE EXTENSION IF NOT EXISTS hypopg;", ""))  # type: ignore[arg-type]
    try:
        yield Target(name, _dsn_for(infra.pg_dsn, name), _dsn_for(infra.pg_dsn, plain))
    finally:
        with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
            for db in (name, plain):
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
                )
