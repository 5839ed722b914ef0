"""The mesh for end-to-end tests: the five services as processes, plus a webhook sink."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsmesh_dev.infra import Endpoints
from opsmesh_dev.infra.process import free_port, port_open, spawn, terminate, wait_until
from opsmesh_dev.tools.mesh import Mesh

RULES = """
groups:
  - name: e2e
    rules:
      - alert: E2EErrorRatio
        signal: e2e_error_ratio
        op: ">"
        threshold: 0.5
        labels: {severity: page}
        annotations:
          summary: "{{ labels.service }} error ratio {{ value }}"
          runbook_url: runbooks/high-error-rate.md
"""


API_TOKEN = "e2e-writer-token-0123456789"
READ_TOKEN = "e2e-reader-token-0123456789"

AM_CONFIG = """
global:
  resolve_timeout: 5m
route:
  receiver: default
  group_by: [alertname, service]
  group_wait: 500ms
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['team="night-shift"']
      mute_time_intervals: [always]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [service]
receivers:
  - name: default
time_intervals:
  - name: always
    time_intervals:
      - times: [{start_time: "00:00", end_time: "24:00"}]
"""


@dataclass
class Sink:
    url: str
    file: Path

    def received(self) -> list[dict]:
        if not self.file.exists():
            return []
        # The sink may be mid-write: only complete lines (ending in a newline) are read.
        complete = self.file.read_text().rpartition("\n")[0]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def notifications(self, **common_labels: str) -> list[dict[str, Any]]:
        """Payloads received so far whose common labels include ``common_labels``."""
        return [
            e["payload"]
            for e in self.received()
            if all(e["payload"]["commonLabels"].get(k) == v for k, v in common_labels.items())
        ]


@pytest.fixture(scope="session")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    workdir = tmp_path_factory.mktemp("sink")
    port = free_port()
    out = workdir / "received.jsonl"
    process = spawn(
        [sys.executable, "-m", "opsmesh_dev.tools.sink", "--port", str(port), "--out", str(out)],
        log_file=workdir / "sink.log",
    )
    try:
        wait_until(lambda: port_open(port), timeout_s=20, what="webhook sink", process=process)
        yield Sink(f"http://127.0.0.1:{port}/hooks/default", out)
    finally:
        terminate(process)


@pytest.fixture(scope="session")
def mesh(infra: Endpoints, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    workdir = tmp_path_factory.mktemp("mesh")
    rules = workdir / "rules.yml"
    rules.write_text(RULES)
    am_config = workdir / "alertmanager.yml"
    am_config.write_text(AM_CONFIG)
    running = Mesh(
        infra,
        workdir,
        common_env={"OPSMESH_SELF_REPORT_S": "1"},  # the mesh's own signals, often
        env={
            "metrics-ingest": {
                "METRICS_INGEST_WINDOWS_S": "1",
                "METRICS_INGEST_ALLOWED_LATENESS_S": "0.5",
                "METRICS_INGEST_IDLE_GRACE_S": "0.5",
            },
            "alert-engine": {
                "ALERT_ENGINE_RULES_FILES": str(rules),
                "ALERT_ENGINE_CONFIG_FILE": str(am_config),
                "ALERT_ENGINE_API_TOKENS": f"{API_TOKEN}:write;{READ_TOKEN}:read",
                "ALERT_ENGINE_FLUSH_TICK_S": "0.05",
            },
            "notifier": {
                "NOTIFIER_DEFAULT_WEBHOOK_URL": sink.url,
                "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
                "NOTIFIER_RETRY_INITIAL_S": "0.1",
                "NOTIFIER_RETRY_DEADLINE_S": "5",
                # The console forwards its session's token with a dead letter's replay.
                "NOTIFIER_API_TOKENS": f"{API_TOKEN}:write;{READ_TOKEN}:read",
            },
            # Started by the console's tests only (tests/e2e/test_console*.py).
            "console": {
                "CONSOLE_API_TOKENS": f"{API_TOKEN}:write;{READ_TOKEN}:read",
                "CONSOLE_POLL_S": "0.5",
            },
        },
    )
    try:
        running.start()
        yield running
    finally:
        running.stop_all()
