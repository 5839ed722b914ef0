"""alert-engine as an Alertmanager: amtool and the real Prometheus drive it unchanged.

amtool (Debian's prometheus-alertmanager) posts alerts, queries them, and adds, lists
and expires silences through /api/v2; Prometheus (Debian's prometheus) evaluates a rule
and alerts to the engine. Notifications reach the webhook sink through the notifier.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opsmesh.events import SignalKind, SignalObserved, SignalSource
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.topics import SIGNALS
from opsmesh_dev.infra.process import free_port, port_open, spawn, terminate, wait_until
from opsmesh_dev.tools.mesh import Mesh
from tests.e2e.conftest import API_TOKEN, READ_TOKEN, Sink

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def engine_url(mesh: Mesh) -> str:
    return mesh.running["alert-engine"].url


@pytest.fixture(scope="module")
def amtool(engine_url: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    http_config = tmp_path_factory.mktemp("amtool") / "http.yml"
    http_config.write_text(f"authorization:\n  credentials: {API_TOKEN}\n")

    def run(*args: str) -> str:
        result = subprocess.run(
            [
                "amtool",
                f"--alertmanager.url={engine_url}",
                f"--http.config.file={http_config}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, f"amtool {args}: {result.stderr}{result.stdout}"
        # The engine reports an Alertmanager release of amtool's major.minor by default.
        assert "Warning" not in result.stderr, result.stderr
        return result.stdout

    return run


def api(
    url: str, method: str = "GET", body: Any = None, token: str | None = API_TOKEN
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(raw) if "json" in kind else raw.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(url: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_amtool_posts_queries_and_resolves_alerts(amtool, engine_url, sink: Sink, unique) -> None:
    service = f"am-{unique}"
    amtool(
        "alert",
        "add",
        "alertname=AmtoolAlert",
        f"service={service}",
        "severity=warning",
        "--annotation=summary=posted by amtool",
        "--generator-url=http://example.test/g",
    )
    listed = json.loads(amtool("alert", "query", f"service={service}", "-o", "json"))
    assert [a["labels"]["alertname"] for a in listed] == ["AmtoolAlert"]
    assert listed[0]["annotations"] == {"summary": "posted by amtool"}
    assert listed[0]["status"]["state"] == "active"

    firing = wait_until(
        lambda: sink.notifications(service=service), timeout_s=30.0, what="the firing notification"
    )
    assert firing[0]["status"] == "firing"
    assert firing[0]["alerts"][0]["generatorURL"] == "http://example.test/g"

    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    amtool(
        "alert",
        "add",
        "alertname=AmtoolAlert",
        f"service={service}",
        "severity=warning",
        f"--end={ends}",
    )
    resolved = wait_until(
        lambda: [p for p in sink.notifications(service=service) if p["status"] == "resolved"],
        timeout_s=30.0,
        what="the resolved notification",
    )
    assert resolved[0]["notificationReason"] == "all_resolved"
    assert json.loads(amtool("alert", "query", f"service={service}", "-o", "json")) == []


def test_amtool_silences_mute_and_expire(amtool, engine_url, sink: Sink, unique) -> None:
    service = f"silenced-{unique}"
    silence_id = amtool(
        "silence",
        "add",
        f"service={service}",
        "--comment=maintenance",
        "--author=e2e",
        "--duration=1h",
    ).strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", silence_id)
    listed = json.loads(amtool("silence", "query", f"service={service}", "-o", "json"))
    assert [s["id"] for s in listed] == [silence_id]
    assert listed[0]["status"]["state"] == "active"

    before = metric(engine_url, "alert_engine_notifications_suppressed_total", reason="all_muted")
    amtool("alert", "add", "alertname=SilencedAlert", f"service={service}")
    alerts = json.loads(amtool("alert", "query", f"service={service}", "--silenced", "-o", "json"))
    assert alerts[0]["status"]["state"] == "suppressed"
    assert alerts[0]["status"]["silencedBy"] == [silence_id]
    assert json.loads(amtool("alert", "query", f"service={service}", "-o", "json")) == [], (
        "amtool hides silenced alerts by default"
    )
    wait_until(
        lambda: (
            metric(engine_url, "alert_engine_notifications_suppressed_total", reason="all_muted")
            > before
        ),
        timeout_s=30.0,
        what="the muted flush",
    )
    assert sink.notifications(service=service) == [], "a silenced alert is not notified"

    amtool("silence", "expire", silence_id)
    expired = json.loads(
        amtool("silence", "query", "--expired", f"service={service}", "-o", "json")
    )
    assert expired[0]["status"]["state"] == "expired"
    wait_until(
        lambda: sink.notifications(service=service),
        timeout_s=30.0,
        what="the notification once unsilenced",
    )


def test_inhibition_time_muting_and_explain(engine_url, sink: Sink, unique) -> None:
    service = f"inhibit-{unique}"
    status, _ = api(
        f"{engine_url}/api/v2/alerts",
        "POST",
        [
            {"labels": {"alertname": "Outage", "service": service, "severity": "critical"}},
            {"labels": {"alertname": "Slow", "service": service, "severity": "warning"}},
        ],
    )
    assert status == 200
    wait_until(
        lambda: sink.notifications(service=service),
        timeout_s=30.0,
        what="the critical notification",
    )
    status, alerts = api(f"{engine_url}/api/v2/alerts?filter=service%3D%22{service}%22")
    by_name = {a["labels"]["alertname"]: a for a in alerts}
    assert by_name["Slow"]["status"]["state"] == "suppressed"
    assert by_name["Slow"]["status"]["inhibitedBy"] == [by_name["Outage"]["fingerprint"]]
    assert by_name["Outage"]["status"]["state"] == "active"
    assert {p["commonLabels"]["alertname"] for p in sink.notifications(service=service)} == {
        "Outage"
    }

    query = urllib.parse.quote(
        f'{{alertname="Slow",service="{service}",severity="warning",team="night-shift"}}'
    )
    status, explained = api(f"{engine_url}/api/v1/explain?labels={query}")
    assert status == 200
    (route,) = explained["routes"]
    assert route["route_key"] == '{}/{team="night-shift"}'
    assert route["receiver"] == "default"
    assert route["time_muted_now"] == "time_muted"
    assert route["timers"] == {
        "group_wait": "500ms",
        "group_interval": "1s",
        "repeat_interval": "1h",
    }
    assert (
        route["group_key"]
        == f'{{}}/{{team="night-shift"}}:{{alertname="Slow", service="{service}"}}'
    )
    assert explained["inhibited_by"]["source_fingerprint"] == by_name["Outage"]["fingerprint"]


def test_writes_need_a_write_token_and_bad_input_gets_a_400(engine_url) -> None:
    body = [{"labels": {"alertname": "X"}}]
    assert api(f"{engine_url}/api/v2/alerts", "POST", body, token=None)[0] == 401
    assert (
        api(f"{engine_url}/api/v2/alerts", "POST", body, token="not-a-real-token-at-all")[0] == 401
    )
    assert api(f"{engine_url}/api/v2/alerts", "POST", body, token=READ_TOKEN)[0] == 403
    status, text = api(f"{engine_url}/api/v2/alerts", "POST", [{"labels": {"bad name": "x"}}])
    assert status == 400
    assert "invalid label name" in text
    status, text = api(f"{engine_url}/api/v2/silences", "POST", {"matchers": []})
    assert status == 400
    assert api(f"{engine_url}/api/v2/silence/no-such-id")[0] == 404
    assert api(f"{engine_url}/api/v1/explain?labels=%7Ba%3D~%22x%22%7D")[0] == 400
    assert api(f"{engine_url}/-/healthy", token=None)[0] == 200
    assert api(f"{engine_url}/-/ready", token=None)[0] == 200
    status, document = api(f"{engine_url}/api/v1/openapi.json", token=None)
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert "/api/v1/explain" in document["paths"]


def test_amtool_reads_status_and_receivers(amtool) -> None:
    shown = amtool("config", "show")
    assert "inhibit_rules" in shown
    assert "night-shift" in shown
    assert "default" in amtool("config", "routes", "show")


@pytest.fixture
def prometheus(engine_url: str, tmp_path: Path, unique: str) -> Iterator[str]:
    port = free_port()
    host = engine_url.removeprefix("http://")
    (tmp_path / "rules.yml").write_text(f"""
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: PrometheusE2E
        expr: vector(1)
        labels: {{service: prom-{unique}, severity: page}}
        annotations: {{summary: "raised by Prometheus"}}
""")
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{evaluation_interval: 1s, scrape_interval: 15s}}
rule_files: [{tmp_path / "rules.yml"}]
alerting:
  alertmanagers:
    - api_version: v2
      authorization: {{credentials: {API_TOKEN}}}
      static_configs: [{{targets: ["{host}"]}}]
""")
    process = spawn(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--rules.alert.resend-delay=1s",
        ],
        log_file=tmp_path / "prometheus.log",
    )
    try:
        wait_until(
            lambda: port_open(port),
            timeout_s=60,
            what="Prometheus",
            process=process,
            log_file=tmp_path / "prometheus.log",
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        terminate(process)


def test_prometheus_alerts_to_the_engine(prometheus: str, engine_url, sink: Sink, unique) -> None:
    service = f"prom-{unique}"
    alerts = wait_until(
        lambda: api(f"{engine_url}/api/v2/alerts?filter=service%3D%22{service}%22")[1],
        timeout_s=60,
        what="Prometheus' alert to arrive",
    )
    (alert,) = alerts
    assert alert["labels"] == {"alertname": "PrometheusE2E", "service": service, "severity": "page"}
    port = prometheus.rsplit(":", 1)[1]
    expected = rf"http://[^/]+:{port}/graph\?g0\.expr=vector%281%29.*"
    assert re.fullmatch(expected, alert["generatorURL"])
    (payload, *_) = wait_until(
        lambda: sink.notifications(service=service), timeout_s=30.0, what="the notification"
    )
    assert payload["alerts"][0]["annotations"] == {"summary": "raised by Prometheus"}
    assert payload["status"] == "firing"


def test_rules_through_the_rest_api_evaluate_and_can_be_deleted(
    engine_url, mesh: Mesh, sink: Sink, unique
) -> None:
    group = f"api-{unique}"
    service = f"api-rule-{unique}"
    rule_file = f"""
groups:
  - name: {group}
    rules:
      - alert: ApiRule
        signal: api_rule_signal_{unique}
        op: ">"
        threshold: 10
        labels: {{severity: ticket}}
"""
    request = urllib.request.Request(
        f"{engine_url}/api/v1/rules",
        data=rule_file.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/yaml"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    status, rules = api(f"{engine_url}/api/v1/rules")
    (ours,) = [r for r in rules if r["group"] == group]
    assert (ours["name"], ours["origin"], ours["threshold"]) == ("ApiRule", "api", 10)

    bad = rule_file.replace('op: ">"', 'op: "=>"')
    request = urllib.request.Request(
        f"{engine_url}/api/v1/rules",
        data=bad.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert f"({group})" in refused.value.read().decode(), "the error names the group"

    async def send() -> None:
        producer = EventProducer(
            {"bootstrap_servers": mesh.endpoints.kafka_bootstrap}, source="/tests/e2e"
        )
        await producer.start()
        try:
            await producer.publish(
                Outgoing(
                    SIGNALS,
                    service,
                    SignalObserved(
                        source=SignalSource.METRICS,
                        kind=SignalKind.ROLLUP,
                        name=f"api_rule_signal_{unique}",
                        subject=service,
                        labels={"service": service},
                        value=42.0,
                        observed_at=time.time(),
                    ),
                )
            )
        finally:
            await producer.stop()

    asyncio.run(send())
    payloads = wait_until(
        lambda: sink.notifications(service=service), timeout_s=30.0, what="the API rule's alert"
    )
    assert payloads[0]["commonLabels"] == {
        "alertname": "ApiRule",
        "service": service,
        "severity": "ticket",
    }
    status, deleted = api(f"{engine_url}/api/v1/rules/{group}", "DELETE")
    assert (status, deleted) == (200, {"deleted": group})
    assert all(r["group"] != group for r in api(f"{engine_url}/api/v1/rules")[1])
    assert api(f"{engine_url}/api/v1/rules/{group}", "DELETE")[0] == 404
    assert api(f"{engine_url}/api/v1/rules/e2e", "DELETE")[0] == 409, "file groups stay files"


def test_opsmesh_alerts_explain(engine_url) -> None:
    result = subprocess.run(
        [
            "opsmesh",
            "alerts",
            "explain",
            'alertname="Disk",team="night-shift"',
            "--url",
            engine_url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert 'route 0.0 {}/{team="night-shift"} -> receiver default' in result.stdout
    assert "time-muted now: time_muted" in result.stdout
    assert "silenced by: nothing" in result.stdout


def test_opsmesh_silence_add_list_expire(engine_url, unique) -> None:
    def opsmesh(*args: str, token: str | None = API_TOKEN) -> subprocess.CompletedProcess[str]:
        env_token = ["--token", token] if token else []
        return subprocess.run(
            ["opsmesh", "silence", *args, "--url", engine_url, *env_token],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    denied = opsmesh("add", f'team="{unique}"', "-c", "no token", token=None)
    assert denied.returncode != 0
    assert "401" in denied.stderr
    bad = opsmesh("add", "team~x", "-c", "bad matcher")
    assert bad.returncode == 2, "a usage error, before any request"
    assert "bad matcher" in bad.stderr

    added = opsmesh("add", f'team="{unique}"', 'job=~"api|web"', "-d", "2h", "-c", "deploy")
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    status, body = api(f"{engine_url}/api/v2/silence/{silence_id}")
    assert status == 200
    assert body["status"]["state"] == "active"
    assert body["comment"] == "deploy"
    assert {(m["name"], m["value"], m["isRegex"]) for m in body["matchers"]} == {
        ("team", unique, False),
        ("job", "api|web", True),
    }
    listed = opsmesh("list")
    assert listed.returncode == 0, listed.stderr
    (line,) = [ln for ln in listed.stdout.splitlines() if ln.startswith(silence_id)]
    assert f'team="{unique}"' in line
    assert 'job=~"api|web"' in line
    assert "active" in line

    expired = opsmesh("expire", silence_id)
    assert expired.returncode == 0, expired.stderr
    assert api(f"{engine_url}/api/v2/silence/{silence_id}")[1]["status"]["state"] == "expired"
    assert silence_id not in opsmesh("list").stdout
    assert silence_id in opsmesh("list", "--expired").stdout
