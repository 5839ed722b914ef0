"""``opsmesh health-check`` against the real broker, database and Redis of the test
session, and two services that answer their readiness probe (one ready, one not): the
table and the JSON say which part failed and why, and the exit code follows."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from click.testing import CliRunner

from opsmesh.cli.main import cli
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration
BEHIND = 7  # records the test's consumer group has not consumed


class _Readiness(BaseHTTPRequestHandler):
    ready = True

    def do_GET(self) -> None:
        ok = self.ready and self.path == "/health/ready"
        body = b'{"status":"ok"}' if ok else b'{"status":"error","checks":{"kafka":"stalled"}}'
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet: the answers are asserted through the command's output."""


class _NotReady(_Readiness):
    ready = False


@pytest.fixture
def service_urls() -> Iterator[tuple[str, str]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (_Readiness, _NotReady)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        ready, not_ready = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
        yield ready, not_ready
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


async def _group_behind(bootstrap: str, topic: str, group: str) -> None:
    """A mesh-named group that committed offset 0 of a topic holding BEHIND records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(BEHIND):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(0, "")})
    finally:
        await consumer.stop()


def _run(infra: Endpoints, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["health-check", *args], env=infra.as_env())
    return result.exit_code, result.output


def _by_target(output: str) -> dict[tuple[str, str], dict[str, Any]]:
    document = json.loads(output)
    return {(c["check"], c["target"]): c for c in document["checks"]}


def test_a_service_that_is_not_ready_fails_the_check_and_says_why(
    infra: Endpoints, unique: str, service_urls: tuple[str, str]
) -> None:
    ready, not_ready = service_urls
    group = f"opsmesh.health-check-{unique}"
    asyncio.run(_group_behind(infra.kafka_bootstrap, f"hc-{unique}", group))
    services = [
        f"--service={name}={ready}"
        for name in ("metrics-ingest", "alert-engine", "notifier", "query-analyzer")
    ]
    code, output = _run(
        infra,
        *services,
        f"--service=health-aggregator={not_ready}",
        "--max-lag=1000000000",
        "--max-dead-letters=1000000000",
        "--json",
    )
    assert code == 1, output
    checks = _by_target(output)
    assert json.loads(output)["healthy"] is False
    failing = checks[("service", "health-aggregator")]
    assert failing["status"] == "fail"
    assert "HTTP 503" in failing["detail"]
    assert "stalled" in failing["detail"]
    assert checks[("service", "notifier")]["status"] == "ok"
    assert checks[("broker", infra.kafka_bootstrap)]["status"] == "ok"
    database = next(c for (kind, _), c in checks.items() if kind == "database")
    assert database["status"] == "ok"
    assert database["detail"].startswith("PostgreSQL ")
    assert "postgres@" not in database["target"]  # host:port/db only, never credentials
    redis = next(c for (kind, _), c in checks.items() if kind == "redis")
    assert redis["status"] == "ok"
    assert redis["detail"].startswith("Redis ")
    lag = checks[("consumer-lag", group)]
    assert lag["status"] == "ok"
    assert lag["detail"].startswith(f"{BEHIND} record(s) behind")
    assert checks[("dlq", "opsmesh.dlq")]["status"] == "ok"


def test_lag_past_the_bound_fails_and_a_healthy_mesh_exits_zero(
    infra: Endpoints, unique: str, service_urls: tuple[str, str]
) -> None:
    ready, _ = service_urls
    group = f"opsmesh.health-check-{unique}"
    asyncio.run(_group_behind(infra.kafka_bootstrap, f"hc-{unique}", group))
    services = [
        f"--service={name}={ready}"
        for name in (
            "metrics-ingest",
            "alert-engine",
            "notifier",
            "query-analyzer",
            "health-aggregator",
        )
    ]
    # Other tests' groups share the broker; only this group's verdict is read here.
    code, output = _run(infra, *services, f"--max-lag={BEHIND - 1}", "--json")
    lag = _by_target(output)[("consumer-lag", group)]
    assert lag["status"] == "fail"
    assert f"most on hc-{unique}[0]: {BEHIND}" in lag["detail"]
    assert code == 1

    code, output = _run(infra, *services, "--max-lag=1000000000", "--max-dead-letters=1000000000")
    assert code == 0, output
    assert output.rstrip().endswith("healthy")
    assert "FAIL" not in output


def test_a_part_that_does_not_answer_is_a_failed_check_not_a_crash(infra: Endpoints) -> None:
    env = {**infra.as_env(), "OPSMESH_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = CliRunner().invoke(
        cli,
        ["health-check", "--service=metrics-ingest=http://127.0.0.1:1", "--timeout=2", "--json"],
        env=env,
    )
    assert result.exit_code == 1, result.output
    checks = _by_target(result.output)
    assert checks[("redis", "127.0.0.1:1")]["status"] == "fail"
    assert checks[("service", "metrics-ingest")]["status"] == "fail"
