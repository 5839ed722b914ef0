"""A small shop schema in a database of the session's PostgreSQL, for the hooks to query."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from opsmesh.settings import ENV_PG, ENV_REDIS
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.infra.redis import RedisServer
from opsmesh_dev.tools.demo_db import dsn_for

SCHEMA = """
CREATE TABLE authors (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE posts (id int PRIMARY KEY, author_id int NOT NULL, title text NOT NULL);
INSERT INTO authors SELECT g, 'author ' || g FROM generate_series(1, 20) g;
INSERT INTO posts SELECT g, g, 'post ' || g FROM generate_series(1, 20) g;
"""


@pytest.fixture(scope="session")
def shop_dsn(infra: Endpoints) -> Iterator[str]:
    name = f"sdk_shop_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = dsn_for(infra.pg_dsn, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    try:
        yield dsn
    finally:
        with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def cache_redis_url() -> Iterator[str]:
    """A Redis of the cache's tests' own (``OPSMESH_REDIS_URL`` uses an existing one): the
    cache needs no Kafka or PostgreSQL, so it does not wait for the whole stack."""
    given = os.environ.get(ENV_REDIS)
    if given:
        yield given
        return
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-cache-redis-"))
    server = RedisServer(workdir)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def cache_pg_server() -> Iterator[str]:
    """A PostgreSQL of the L3 cache's tests' own (``OPSMESH_PG_DSN`` uses an existing one),
    for the same reason as ``cache_redis_url``."""
    given = os.environ.get(ENV_PG)
    if given:
        yield given
        return
    # Not under tmp_path: the server runs as its own user when we are root.
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-cache-pg-"))
    workdir.chmod(0o755)
    server = PostgresServer(workdir / "postgres")
    server.start()
    try:
        yield server.dsn
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def cache_pg_dsn(cache_pg_server: str) -> Iterator[str]:
    """A fresh database with the shop schema, per test (its triggers are the test's)."""
    name = f"sdk_l3_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cache_pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = dsn_for(cache_pg_server, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    try:
        yield dsn
    finally:
        with psycopg.connect(cache_pg_server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
