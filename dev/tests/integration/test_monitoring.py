"""Prometheus and the exporters as ``opsmesh up`` runs them (Debian's packages), against a
real PostgreSQL and Redis: each exporter exposes the metric names the dashboards read
(``Exporter.metrics``), Prometheus scrapes each job and probes readiness, and sends its
alerts and the exporters' series on with the run's token.

The two services Prometheus talks to are stand-ins here (HTTP servers that answer
``/health/ready`` and ``/metrics`` and record what is posted to them): what is under test is
the monitoring's wiring; tests/e2e/test_remote_write.py feeds the real metrics-ingest."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis as redis_client

from opsmesh_dev.infra.postgres import PostgresServer
from opsmesh_dev.infra.process import wait_until
from opsmesh_dev.infra.redis import RedisServer
from opsmesh_dev.infra.stack import Endpoints
from opsmesh_dev.tools import exporter_dashboards
from opsmesh_dev.tools.exporters import EXPORTERS
from opsmesh_dev.tools.monitoring import Monitoring

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
TOKEN = "monitoring-integration-token-0123456789"


class _Service(BaseHTTPRequestHandler):
    """Ready, no metrics of its own; keeps (path, Authorization) of every POST."""

    posts: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.posts.append((self.path, self.headers.get("Authorization")))
        self.send_response(200 if self.path.startswith("/api/v2/alerts") else 204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def monitoring() -> Iterator[Monitoring]:
    # Readable by all: PostgreSQL runs as its own user when the tests run as root.
    workdir = Path(tempfile.mkdtemp(prefix="opsmesh-monitoring-"))
    workdir.chmod(0o755)
    postgres = PostgresServer(workdir / "postgres")
    redis = RedisServer(workdir / "redis")
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Service) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    running: Monitoring | None = None
    try:
        postgres.start()
        redis.start()
        # The exporters read no Kafka; the address is never dialled.
        endpoints = Endpoints("127.0.0.1:9", postgres.dsn, redis.url)
        running = Monitoring(
            workdir / "monitoring",
            endpoints,
            services={
                "metrics-ingest": servers[0].server_address[1],
                "alert-engine": servers[1].server_address[1],
            },
            token=TOKEN,
        )
        running.start()
        yield running
    finally:
        if running is not None:
            running.stop()
        for server in servers:
            server.shutdown()
            server.server_close()
        redis.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _names(text: str) -> set[str]:
    return {
        line.split("{", 1)[0].split(" ", 1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _query(monitoring: Monitoring, expr: str) -> list[dict[str, Any]]:
    url = monitoring.running["prometheus"].url
    answer = json.loads(_get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"))
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def test_each_exporter_exposes_the_names_the_dashboards_read(monitoring: Monitoring) -> None:
    for exporter in EXPORTERS:
        child = monitoring.running[exporter.job]
        if exporter.job == "blackbox":
            # Probe series come from /probe, one probe at a time.
            target = monitoring.running["prometheus"].url + "/-/ready"
            query = urllib.parse.urlencode({"module": "http_ready", "target": target})
            text = _get(f"{child.url}/probe?{query}")
        else:
            text = _get(f"{child.url}/metrics")
        missing = exporter.metrics - _names(text)
        assert not missing, f"{exporter.job} exposes none of {sorted(missing)}"


def test_prometheus_scrapes_every_exporter_and_probes_readiness(monitoring: Monitoring) -> None:
    jobs = {e.job for e in EXPORTERS}

    def all_up() -> bool:
        up = {s["metric"]["job"]: s["value"][1] for s in _query(monitoring, "up")}
        return all(up.get(job) == "1" for job in jobs)

    wait_until(all_up, timeout_s=60, what="every exporter job up")
    assert [s["value"][1] for s in _query(monitoring, "pg_up")] == ["1"]
    assert [s["value"][1] for s in _query(monitoring, "redis_up")] == ["1"]
    targets = {f"http://127.0.0.1:{port}/health/ready" for port in monitoring.services.values()}

    def every_target_probed() -> list[dict[str, Any]]:
        # The blackbox job's targets are scraped one by one: the job can be `up` for one
        # target before another has been probed at all.
        probes = _query(monitoring, 'probe_success{job="blackbox"}')
        return probes if {s["metric"]["instance"] for s in probes} == targets else []

    probes = wait_until(every_target_probed, timeout_s=60, what="every readiness target probed")
    assert {s["value"][1] for s in probes} == {"1"}


def test_alerts_and_exporter_series_are_sent_on_with_the_token(monitoring: Monitoring) -> None:
    def sent(path: str) -> list[str | None]:
        return [auth for p, auth in _Service.posts if p.startswith(path)]

    # Watchdog (compose/prometheus/rules) always fires; remote write sends within seconds.
    alerts = wait_until(lambda: sent("/api/v2/alerts"), timeout_s=60, what="an alert posted")
    writes = wait_until(lambda: sent("/api/v1/write"), timeout_s=60, what="a remote write")
    assert set(alerts) == set(writes) == {f"Bearer {TOKEN}"}
    assert (monitoring.workdir / "api-token").stat().st_mode & 0o077 == 0, "token file readable"


def test_the_database_cache_and_host_dashboards_show_data(monitoring: Monitoring) -> None:
    """Each query of the exporter dashboards, evaluated by this Prometheus, returns series
    once there are two scrapes to take a rate over (and a cache read to take a ratio of)."""
    client = redis_client.Redis.from_url(monitoring.endpoints.redis_url)
    client.set("monitoring-test", "1")
    client.get("monitoring-test")
    client.get("monitoring-test-missing")
    client.close()
    exprs = [
        expr
        for _, _, panels in exporter_dashboards.BOARDS
        for panel in panels()
        for expr, _ in panel.queries
    ]
    exprs += [expr for panel in exporter_dashboards.probes() for expr, _ in panel.queries]

    def empty() -> list[str]:
        return [expr for expr in exprs if not _query(monitoring, expr)]

    try:
        wait_until(lambda: not empty(), timeout_s=60, what="data for every dashboard query")
    except TimeoutError:
        raise AssertionError(f"no data for {empty()}") from None
