"""The five services as processes for the API fuzz and hostile-input tests.

They run over the session's real Kafka, PostgreSQL and Redis, but in a database and a
Redis index of their own, so what the fuzzer creates (alerts, silences, rule groups with
arbitrary matchers) never reaches the end-to-end mesh that runs after this package: the
mesh is stopped when the package's last test has run. alert-engine waits an hour before
a group's first notification, so no fuzzed alert is ever handed to the notifier.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from opsmesh.db.migrations import apply_all
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.tools.mesh import Mesh

WRITE_TOKEN = "fuzz-writer-token-0123456789"
READ_TOKEN = "fuzz-reader-token-0123456789"
METRICS_TOKEN = "fuzz-metrics-token-0123456789"
# Sent where a service has no token of its own: an Authorization header it must ignore.
FOREIGN_TOKEN = "not-a-token-of-this-service"


@dataclass(frozen=True, slots=True)
class FuzzMesh:
    mesh: Mesh
    pg_dsn: str
    kafka_bootstrap: str

    def url(self, service: str) -> str:
        return self.mesh.running[service].url


def _with_database(dsn: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=database)


def _redis_index(url: str, index: int) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{index}"))


@pytest.fixture(scope="package")
def fuzz_mesh(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzMesh]:
    database = f"opsmesh_fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    dsn = _with_database(infra.pg_dsn, database)

    asyncio.run(apply_all(dsn))
    endpoints = Endpoints(infra.kafka_bootstrap, dsn, _redis_index(infra.redis_url, 7))
    mesh = Mesh(
        endpoints,
        tmp_path_factory.mktemp("fuzz-mesh"),
        env={
            "metrics-ingest": {"METRICS_INGEST_API_TOKEN": METRICS_TOKEN},
            "alert-engine": {
                "ALERT_ENGINE_API_TOKENS": f"{WRITE_TOKEN}:write;{READ_TOKEN}:read",
                "ALERT_ENGINE_GROUP_WAIT": "1h",
            },
            # Never called: alert-engine sends no notification during the run.
            "notifier": {"NOTIFIER_DEFAULT_WEBHOOK_URL": "http://127.0.0.1:9/unused"},
        },
    )
    try:
        mesh.start()
        yield FuzzMesh(mesh, dsn, infra.kafka_bootstrap)
    finally:
        mesh.stop_all()
        with psycopg.connect(infra.pg_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
