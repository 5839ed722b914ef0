"""The fault suite's own world: a private Kafka, PostgreSQL and Redis (stopping them must
not disturb the rest of the session), the five services as processes, a webhook sink,
and the report printed at the end of the run.

The parts are always started here, whatever ``OPSMESH_KAFKA_BOOTSTRAP`` and friends
say: the suite stops and restarts them, which it cannot do to someone else's server.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opsmesh.db.migrations import apply_all
from opsmesh.kafka.admin import ensure_topics
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.kafka import KafkaServer
from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.infra.process import free_port, port_open, spawn, terminate, wait_until
from opsmesh_dev.infra.redis import RedisServer
from opsmesh_dev.tools.mesh import SERVICES, Mesh
from tests.faults.load import AM_CONFIG, RULES
from tests.faults.report import REPORT_KEY, FaultReport

WRITE_TOKEN = "faults-writer-token-0123456789"
LANE_CONCURRENCY = 8  # the notifier's workers per destination: its send→record window


@dataclass
class FaultInfra:
    kafka: KafkaServer
    postgres: PostgresServer
    redis: RedisServer

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(self.kafka.bootstrap, self.postgres.dsn, self.redis.url)


@dataclass(frozen=True)
class FaultSink:
    url: str
    file: Path


@pytest.fixture(scope="module")
def fault_infra() -> Iterator[FaultInfra]:
    # Not under pytest's tmp_path: PostgreSQL runs as its own user and must reach it.
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-faults-"))
    workdir.chmod(0o755)
    infra = FaultInfra(
        KafkaServer(workdir / "kafka"),
        PostgresServer(workdir / "postgres"),
        RedisServer(workdir / "redis"),
    )
    try:
        infra.kafka.start()
        infra.postgres.start()
        infra.redis.start()
        asyncio.run(_prepare(infra.endpoints))
        yield infra
    finally:
        for part in (infra.redis, infra.postgres, infra.kafka):
            part.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _prepare(endpoints: Endpoints) -> None:
    await ensure_topics({"bootstrap_servers": endpoints.kafka_bootstrap})
    await apply_all(endpoints.pg_dsn)


@pytest.fixture(scope="module")
def fault_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultSink]:
    workdir = tmp_path_factory.mktemp("faults-sink")
    port = free_port()
    out = workdir / "received.jsonl"
    process = spawn(
        [sys.executable, "-m", "opsmesh_dev.tools.sink", "--port", str(port), "--out", str(out)],
        log_file=workdir / "sink.log",
    )
    try:
        wait_until(lambda: port_open(port), timeout_s=20, what="webhook sink", process=process)
        yield FaultSink(f"http://127.0.0.1:{port}/hooks/default", out)
    finally:
        terminate(process)


@pytest.fixture(scope="module")
def fault_mesh(
    fault_infra: FaultInfra, fault_sink: FaultSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mesh]:
    workdir = tmp_path_factory.mktemp("faults-mesh")
    rules = workdir / "rules.yml"
    rules.write_text(RULES)
    am_config = workdir / "alertmanager.yml"
    am_config.write_text(AM_CONFIG)
    mesh = Mesh(
        fault_infra.endpoints,
        workdir,
        env={
            "metrics-ingest": {
                "METRICS_INGEST_WINDOWS_S": "1",
                "METRICS_INGEST_ALLOWED_LATENESS_S": "0.5",
                "METRICS_INGEST_IDLE_GRACE_S": "0.5",
            },
            "query-analyzer": {
                "QUERY_ANALYZER_WINDOW_S": "10",
                "QUERY_ANALYZER_ANALYSIS_INTERVAL_S": "1",
            },
            "alert-engine": {
                "ALERT_ENGINE_RULES_FILES": str(rules),
                "ALERT_ENGINE_CONFIG_FILE": str(am_config),
                "ALERT_ENGINE_API_TOKENS": f"{WRITE_TOKEN}:write",
                "ALERT_ENGINE_FLUSH_TICK_S": "0.05",
            },
            "notifier": {
                "NOTIFIER_DEFAULT_WEBHOOK_URL": fault_sink.url,
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
                "NOTIFIER_LANE_CONCURRENCY": str(LANE_CONCURRENCY),
            },
        },
    )
    try:
        mesh.start()
        yield mesh
    finally:
        mesh.stop_all()


@pytest.fixture
def mesh_up(fault_mesh: Mesh) -> Mesh:
    """Every service running and ready before a case (a failed case may leave one down)."""
    for info in SERVICES:
        running = fault_mesh.running.get(info.name)
        if running is None or running.process.poll() is not None:
            fault_mesh.running.pop(info.name, None)
            fault_mesh.restart(info.name)
        fault_mesh.wait_ready(info.name, timeout_s=120)
    return fault_mesh


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    config = request.config
    if REPORT_KEY not in config.stash:
        base = request.getfixturevalue("tmp_path_factory").getbasetemp()
        config.stash[REPORT_KEY] = FaultReport(base / "faults" / "report.md")
    return config.stash[REPORT_KEY]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    report = config.stash.get(REPORT_KEY, None)
    if report is None or not report.rows:
        return
    terminalreporter.section("fault suite: lost and duplicated notifications, time to ready")
    terminalreporter.write_line(report.render())
    terminalreporter.write_line(f"(also in {report.path})")
