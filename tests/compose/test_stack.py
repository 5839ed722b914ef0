"""``docker compose up`` for real: the stack users run (compose/docker-compose.yml, every
image built here) comes up healthy, a Prometheus-format alert sent with amtool and a metric
sent over HTTP each end as a webhook in the sink and an email in the mail catcher,
Prometheus evaluates the repository's rules and reaches the alert-engine with the stack's
token, scrapes the exporters and remote-writes their series into metrics-ingest, and
``docker-compose down`` leaves nothing behind.

``make compose-test`` runs this alone; ``make test`` runs it with everything else. The
tests share one stack (conftest.py) and run in this file's order; the last takes it down."""

from __future__ import annotations

import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsmesh_dev.tools.exporters import EXPORTERS
from tests.compose.conftest import TIMINGS, Stack
from tests.compose.stack import (
    COMPOSE_DIR,
    PROJECT,
    compose,
    docker,
    eventually,
    http,
    not_yet_healthy,
    project_containers,
)

# Building the images from a cold cache is the slowest step (minutes, not seconds).
pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]

ENGINE = "http://127.0.0.1:8082"
INGEST = "http://127.0.0.1:8081"
PROMETHEUS = "http://127.0.0.1:9090"
SINK = "http://127.0.0.1:8099/hooks"
MAIL = "http://127.0.0.1:8025/api/messages"
# Notifications arrive after the engine's group_wait (2 s in compose) plus delivery.
ARRIVES_WITHIN_S = 60.0


def _notifications_with(label: str, value: str) -> list[dict[str, Any]]:
    status, hooks = http("GET", SINK)
    assert status == 200, hooks
    return [
        hook
        for hook in hooks
        if any(a["labels"].get(label) == value for a in hook["payload"].get("alerts", []))
    ]


def _emails_about(text: str) -> list[dict[str, Any]]:
    status, messages = http("GET", MAIL)
    assert status == 200, messages
    return [m for m in messages if text in m["subject"] or text in m["text"] + m["html"]]


def test_every_service_is_healthy(stack: Stack) -> None:
    services = set(compose("config", "--services").split())
    containers = project_containers()
    started = {c["Config"]["Labels"]["com.docker.compose.service"] for c in containers}
    # Grafana is opt-in (the `grafana` profile): its image is the one not built here.
    assert started == services - {"grafana"}
    assert not not_yet_healthy(containers)
    with_healthchecks = {
        c["Config"]["Labels"]["com.docker.compose.service"]
        for c in containers
        if "Health" in c["State"]
    }
    assert with_healthchecks == started - {"tokens", "demo-traffic"}
    assert len(stack.token) >= 16


def test_writes_need_the_stack_token(stack: Stack) -> None:
    alert = [{"labels": {"alertname": "NoToken"}}]
    assert http("POST", f"{ENGINE}/api/v2/alerts", alert)[0] == 401
    assert http("POST", f"{ENGINE}/api/v2/alerts", alert, token="x" * 32)[0] == 401


def test_an_alert_from_amtool_reaches_the_webhook_sink_and_the_mail_catcher(
    stack: Stack, tmp_path: Path
) -> None:
    """amtool with the --http.config.file that compose/README.md documents."""
    marker = f"compose-{uuid.uuid4().hex[:8]}"
    (tmp_path / "token").write_text(stack.token + "\n")
    config = tmp_path / "amtool-http.yml"
    authorization = {"credentials_file": str(tmp_path / "token")}
    config.write_text(yaml.safe_dump({"authorization": authorization}))
    with TIMINGS.step("alert (amtool) -> webhook sink and mail catcher"):
        subprocess.run(
            [
                "amtool", f"--alertmanager.url={ENGINE}", f"--http.config.file={config}",
                "alert", "add", "alertname=ComposeTestAlert", f"marker={marker}",
                "severity=none", f"--annotation=summary=sent by the compose test {marker}",
            ],
            check=True, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        (hook,) = eventually(
            "the notification at the webhook sink",
            lambda: _notifications_with("marker", marker),
            ARRIVES_WITHIN_S,
        )
        email = eventually("the email", lambda: _emails_about(marker), ARRIVES_WITHIN_S)
    assert hook["hook"] == "default"
    assert hook["payload"]["status"] == "firing"
    assert hook["payload"]["groupLabels"] == {"alertname": "ComposeTestAlert"}
    assert email[0]["rcpt_to"] == ["oncall@example.com"]
    assert "ComposeTestAlert" in email[0]["subject"]


def test_a_metric_sent_over_http_fires_the_demo_rule(stack: Stack) -> None:
    """metrics-ingest (HTTP ingest with the stack token) -> Kafka -> the 5 s windows ->
    alert-engine's HighErrorRate rule (demo-rules.yml) -> notifier -> sink and email."""
    service = f"compose-test-{uuid.uuid4().hex[:6]}"

    def sample() -> list[dict[str, Any]]:
        status, answer = http(
            "POST",
            "http://127.0.0.1:8081/api/v1/metrics",
            {
                "samples": [
                    {
                        "name": "http_error_ratio",
                        "value": 0.9,
                        "labels": {"service": service, "env": "demo"},
                        "sampled_at": time.time(),
                    }
                ]
            },
            token=stack.token,
        )
        assert status == 200, answer
        assert answer["accepted"] == 1, answer
        return _notifications_with("service", service)

    with TIMINGS.step("metric (HTTP ingest) -> rule fires -> webhook and mail"):
        # A sample a second, as an application would report, until the alert notifies.
        (hook, *_) = eventually("the HighErrorRate notification", sample, 90.0, every_s=1.0)
        eventually("the HighErrorRate email", lambda: _emails_about(service), ARRIVES_WITHIN_S)
    (alert,) = [a for a in hook["payload"]["alerts"] if a["labels"].get("service") == service]
    assert alert["labels"]["alertname"] == "HighErrorRate"
    assert alert["status"] == "firing"

    def in_prometheus() -> list[dict[str, Any]]:
        query = urllib.parse.quote(f'http_error_ratio{{service="{service}"}}')
        status, answer = http("GET", f"http://127.0.0.1:9090/api/v1/query?query={query}")
        assert status == 200, answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    # Prometheus scrapes metrics-ingest's /metrics/apps every 5 s.
    (series,) = eventually("the sample in Prometheus", in_prometheus, 30.0)
    assert series["metric"]["env"] == "demo"
    assert float(series["value"][1]) == 0.9


def test_prometheus_loads_the_rules_and_alerts_with_the_token(stack: Stack) -> None:
    status, rules = http("GET", "http://127.0.0.1:9090/api/v1/rules")
    assert status == 200
    loaded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    shipped = {
        r["alert"]
        for path in sorted((COMPOSE_DIR / "prometheus" / "rules").glob("*.yml"))
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
    }
    assert loaded == shipped
    with TIMINGS.step("Prometheus Watchdog -> alert-engine -> webhook"):
        # Accepted only with the token: a 401 would leave the engine without it.
        eventually(
            "Prometheus's Watchdog at the webhook sink",
            lambda: _notifications_with("alertname", "Watchdog"),
            ARRIVES_WITHIN_S,
        )
    status, alerts = http("GET", f"{ENGINE}/api/v2/alerts?filter=alertname%3D%22Watchdog%22")
    assert status == 200
    assert [a["labels"]["alertname"] for a in alerts] == ["Watchdog"]


def _prometheus(expr: str) -> list[dict[str, Any]]:
    status, answer = http(
        "GET", f"{PROMETHEUS}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    )
    assert status == 200, answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def test_prometheus_scrapes_the_exporters_and_remote_writes_their_series(stack: Stack) -> None:
    """Each exporter job is up in Prometheus, every metric name the dashboards read from the
    exporters is there, every service answers the blackbox probe, and an exporter series
    (``pg_up``) arrives in metrics-ingest's rollups through remote write with the token."""
    jobs = {exporter.job for exporter in EXPORTERS}

    def every_job_up() -> bool:
        up = {s["metric"]["job"]: s["value"][1] for s in _prometheus("up")}
        return all(up.get(job) == "1" for job in jobs)

    def missing_names() -> set[str]:
        status, answer = http("GET", f"{PROMETHEUS}/api/v1/label/__name__/values")
        assert status == 200, answer
        return {name for e in EXPORTERS for name in e.metrics} - set(answer["data"])

    def pg_up_in_ingest() -> list[dict[str, Any]]:
        status, answer = http("GET", f"{INGEST}/api/v1/series?name=pg_up")
        assert status == 200, answer
        return [s for s in answer["series"] if s["points"]]

    with TIMINGS.step("exporters up in Prometheus, pg_up remote-written to metrics-ingest"):
        eventually("every exporter job up in Prometheus", every_job_up, 60.0)
        eventually("the dashboards' exporter metrics", lambda: not missing_names(), 60.0)
        (series, *_) = eventually("pg_up in metrics-ingest", pg_up_in_ingest, 90.0, every_s=1.0)
    assert series["labels"]["job"] == "postgres"
    assert series["points"][-1]["last"] == 1.0
    services = {"metrics-ingest", "alert-engine", "notifier", "query-analyzer"}
    services |= {"health-aggregator", "console"}
    probes: dict[str, str] = {}

    def every_probe_succeeds() -> bool:
        probes.clear()
        probes.update(
            {s["metric"]["instance"]: s["value"][1] for s in _prometheus("probe_success")}
        )
        return set(probes.values()) == {"1"}

    try:
        eventually("every service's readiness probe succeeding", every_probe_succeeds, 60.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {probes}") from None
    assert {urllib.parse.urlsplit(i).hostname for i in probes} == services
    assert [s["value"][1] for s in _prometheus("redis_up")] == ["1"]


def test_down_leaves_nothing_running(stack: Stack) -> None:
    with TIMINGS.step("docker-compose down -v (the test)"):
        compose("down", "-v", "--remove-orphans")
    assert project_containers() == []
    label = f"label=com.docker.compose.project={PROJECT}"
    assert docker("network", "ls", "-q", "--filter", label).split() == []
    assert docker("volume", "ls", "-q", "--filter", label).split() == []
