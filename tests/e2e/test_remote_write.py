"""Prometheus (Debian's package) remote-writes into metrics-ingest: what it scrapes
arrives as rolled-up series, through the real broker and database.

Prometheus scrapes metrics-ingest's own /metrics (a few hundred series of counters,
gauges and histograms) with an external label unique to the test, and sends them to
``POST /api/v1/write`` with the ingest token; the test reads them back from the rollup
history with ``GET /api/v1/series``.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.process import free_port, port_open, spawn, terminate, wait_until
from opsmesh_dev.tools.mesh import Mesh

pytestmark = pytest.mark.e2e
TOKEN = "remote-write-e2e-token-0123456789"


@pytest.fixture
def ingest(infra: Endpoints, tmp_path: Path) -> Iterator[str]:
    mesh = Mesh(
        infra,
        tmp_path / "mesh",
        common_env={"OPSMESH_SELF_REPORT_S": "0"},
        env={
            "metrics-ingest": {
                "METRICS_INGEST_API_TOKEN": TOKEN,
                "METRICS_INGEST_WINDOWS_S": "1",
                "METRICS_INGEST_ALLOWED_LATENESS_S": "0.5",
                "METRICS_INGEST_IDLE_GRACE_S": "0.5",
            }
        },
    )
    try:
        mesh.start(["metrics-ingest"])
        yield mesh.running["metrics-ingest"].url
    finally:
        mesh.stop_all()


@pytest.fixture
def prometheus(ingest: str, tmp_path: Path, unique: str) -> Iterator[str]:
    port = free_port()
    target = ingest.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  external_labels: {{rw_test: "{unique}"}}
scrape_configs:
  - job_name: metrics-ingest
    static_configs: [{{targets: ["{target}"]}}]
remote_write:
  - url: {ingest}/api/v1/write
    authorization: {{credentials: {TOKEN}}}
    queue_config: {{batch_send_deadline: 1s, max_samples_per_send: 1000}}
""")
    log = tmp_path / "prometheus.log"
    process = spawn(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log_file=log,
    )
    try:
        wait_until(lambda: port_open(port), timeout_s=60, what="Prometheus", process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        terminate(process)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _series(ingest: str, name: str, unique: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"name": name, "match": f'rw_test="{unique}"'})
    found: list[dict[str, Any]] = _get(f"{ingest}/api/v1/series?{query}")["series"]
    return [s for s in found if s["points"]]


def _counter(ingest: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"{ingest}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


def test_prometheus_remote_write_arrives_as_rolled_up_series(
    prometheus: str, ingest: str, unique: str
) -> None:
    up = wait_until(
        lambda: _series(ingest, "up", unique),
        timeout_s=90,
        what="Prometheus' `up` series in the rollups",
    )
    assert up[0]["labels"] == {
        "rw_test": unique,
        "job": "metrics-ingest",
        "instance": ingest.removeprefix("http://"),
    }
    assert up[0]["points"][-1]["last"] == 1.0
    # A counter (its kind from the _total suffix) rolls up with an increase.
    counter = wait_until(
        lambda: _series(ingest, "metrics_ingest_remote_write_requests_total", unique),
        timeout_s=60,
        what="a counter series in the rollups",
    )
    assert any("increase" in p for s in counter for p in s["points"])
    # Everything a real scrape holds was taken: no request refused.
    assert _counter(ingest, "metrics_ingest_remote_write_requests_total", status="204") > 0
    assert _counter(ingest, "metrics_ingest_remote_write_requests_total", status="400") == 0
