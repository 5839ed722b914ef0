"""Grafana dashboards as code: ``python -m opsmesh_dev.tools.dashboards`` writes
``compose/grafana/dashboards/*.json`` and the provisioning file that loads them.

Built with grafanalib. Every query reads the compose Prometheus (datasource uid
``opsmesh-prometheus``), where each service is scraped as its own job (``job`` is the
service's name) and each exporter too (exporter_dashboards.py: the database, cache and host
dashboards). ``tests/contract/test_dashboards.py`` checks that every expression parses
(promtool), names only metrics the services define or the exporters declare, and that the
files are what this module writes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grafanalib.core import Dashboard, GridPos, Target, TimeSeries
from grafanalib.core import Time as DashboardTime

from opsmesh_dev.tools import exporter_dashboards
from opsmesh_dev.tools.panels import Panel, p

ROOT = Path(__file__).resolve().parents[4]
OUT = ROOT / "compose" / "grafana" / "dashboards"
PROVISIONING = ROOT / "compose" / "grafana" / "provisioning" / "dashboards" / "opsmesh.yml"
MOUNTED_AT = "/etc/grafana/dashboards"  # compose mounts OUT here
DATASOURCE = {"type": "prometheus", "uid": "opsmesh-prometheus"}
SERVICES = ("metrics-ingest", "alert-engine", "notifier", "query-analyzer", "health-aggregator")


def overview() -> list[Panel]:
    return [
        p(
            "Events consumed per second, by service and topic",
            "sum by (job, topic) (rate(opsmesh_consumer_records_total[1m]))",
            "{{job}} {{topic}}",
            "ops",
        ),
        p(
            "Consumer lag (records behind), by service and topic",
            "max by (job, topic) (opsmesh_consumer_lag)",
            "{{job}} {{topic}}",
        ),
        p(
            "Dead-lettered records per second, by source topic and reason",
            "sum by (source_topic, reason) (rate(opsmesh_dlq_records_total[5m]))",
            "{{source_topic}} {{reason}}",
            "ops",
        ),
        p(
            "Alerts held by the alert-engine, by state",
            "sum by (state) (alert_engine_alerts)",
            "{{state}}",
        ),
        p(
            "Notifications delivered per second, by outcome",
            "sum by (outcome) (rate(notifier_deliveries_total[5m]))",
            "{{outcome}}",
            "ops",
        ),
        p(
            "Handler failures per second, by service and class",
            "sum by (job, failure_class) (rate(opsmesh_consumer_handler_failures_total[5m]))",
            "{{job}} {{failure_class}}",
            "ops",
        ),
        p(
            "Stalled consumers",
            "max by (job, group) (opsmesh_consumer_stalled)",
            "{{job}} {{group}}",
        ),
        *exporter_dashboards.probes(),
    ]


def common(job: str) -> list[Panel]:
    """What every service built on the kit exports (the shared consumer and web kit)."""
    sel = f'job="{job}"'
    return [
        p(
            "Records consumed per second, by topic and outcome",
            f"sum by (topic, outcome) (rate(opsmesh_consumer_records_total{{{sel}}}[1m]))",
            "{{topic}} {{outcome}}",
            "ops",
        ),
        p(
            "Consumer lag, by topic",
            f"max by (topic) (opsmesh_consumer_lag{{{sel}}})",
            "{{topic}}",
        ),
        p(
            "Batch handling time, p95",
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(opsmesh_consumer_batch_seconds_bucket{{{sel}}}[5m])))",
            "p95",
            "s",
        ),
        p(
            "Dead-lettered records per second, by reason",
            f"sum by (reason) (rate(opsmesh_dlq_records_total{{{sel}}}[5m]))",
            "{{reason}}",
            "ops",
        ),
        p(
            "HTTP connections open",
            f"sum(opsmesh_http_connections_open{{{sel}}})",
            "open",
        ),
        p(
            "Periodic job failures per second, by loop",
            f"sum by (loop) (rate(opsmesh_periodic_failures_total{{{sel}}}[5m]))",
            "{{loop}}",
            "ops",
        ),
    ]


def own(job: str) -> list[Panel]:
    sel = f'job="{job}"'
    panels = {
        "metrics-ingest": [
            p(
                "Samples per second, by outcome",
                f"sum by (outcome) (rate(metrics_ingest_samples_total{{{sel}}}[1m]))",
                "{{outcome}}",
                "ops",
            ),
            p(
                "JSON ingest samples per second, by outcome",
                f"sum by (outcome) (rate(metrics_ingest_http_samples_total{{{sel}}}[1m]))",
                "{{outcome}}",
                "ops",
            ),
            p(
                "Remote-write samples per second, by outcome",
                f"sum by (outcome) (rate(metrics_ingest_remote_write_samples_total{{{sel}}}[1m]))",
                "{{outcome}}",
                "ops",
            ),
            p(
                "Series held",
                f"sum(metrics_ingest_series_active{{{sel}}})",
                "series",
            ),
            p(
                "Series refused by the cardinality guard per second, by reason",
                f"sum by (reason) (rate(metrics_ingest_series_refused_total{{{sel}}}[5m]))",
                "{{reason}}",
                "ops",
            ),
            p(
                "Windows closed per second",
                f"sum(rate(metrics_ingest_windows_closed_total{{{sel}}}[1m]))",
                "closed",
                "ops",
            ),
        ],
        "alert-engine": [
            p("Alerts, by state", f"sum by (state) (alert_engine_alerts{{{sel}}})", "{{state}}"),
            p(
                "Alerts received per second, by source and outcome",
                f"sum by (source, outcome) (rate(alert_engine_alerts_received_total{{{sel}}}[5m]))",
                "{{source}} {{outcome}}",
                "ops",
            ),
            p(
                "Notifications requested per second, by receiver",
                "sum by (receiver) "
                f"(rate(alert_engine_notifications_requested_total{{{sel}}}[5m]))",
                "{{receiver}}",
                "ops",
            ),
            p(
                "Notifications suppressed per second, by reason",
                f"sum by (reason) (rate(alert_engine_notifications_suppressed_total{{{sel}}}[5m]))",
                "{{reason}}",
                "ops",
            ),
            p(
                "Aggregation groups",
                f"sum(alert_engine_aggregation_groups{{{sel}}})",
                "groups",
            ),
        ],
        "notifier": [
            p(
                "Deliveries per second, by receiver and outcome",
                f"sum by (receiver, outcome) (rate(notifier_deliveries_total{{{sel}}}[5m]))",
                "{{receiver}} {{outcome}}",
                "ops",
            ),
            p(
                "Send attempts per second, by integration and result",
                f"sum by (integration, result) (rate(notifier_send_attempts_total{{{sel}}}[5m]))",
                "{{integration}} {{result}}",
                "ops",
            ),
            p(
                "Delivery time p95, by receiver",
                "histogram_quantile(0.95, sum by (le, receiver) "
                f"(rate(notifier_delivery_seconds_bucket{{{sel}}}[5m])))",
                "{{receiver}}",
                "s",
            ),
            p(
                "Delivery requests in flight",
                f"sum(notifier_inflight_requests{{{sel}}})",
                "in flight",
            ),
        ],
        "query-analyzer": [
            p(
                "Queries analysed per second, by kind",
                f"sum by (kind) (rate(query_analyzer_queries_total{{{sel}}}[5m]))",
                "{{kind}}",
                "ops",
            ),
            p(
                "Findings per second, by kind",
                f"sum by (kind) (rate(query_analyzer_findings_total{{{sel}}}[5m]))",
                "{{kind}}",
                "ops",
            ),
        ],
        "health-aggregator": [
            p(
                "Checks owned",
                f"sum(health_aggregator_checks_owned{{{sel}}})",
                "checks",
            ),
            p(
                "Status changes per second, by status and cause",
                "sum by (status, cause) "
                f"(rate(health_aggregator_status_changes_total{{{sel}}}[5m]))",
                "{{status}} {{cause}}",
                "ops",
            ),
        ],
    }
    return panels[job]


def dashboard(uid: str, title: str, panels: Iterable[Panel]) -> dict[str, Any]:
    built = []
    for index, panel in enumerate(panels):
        built.append(
            TimeSeries(
                title=panel.title,
                description=panel.description,
                dataSource=DATASOURCE,
                targets=[
                    Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i))
                    for i, (expr, legend) in enumerate(panel.queries)
                ],
                unit=panel.unit,
                gridPos=GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2)),
            )
        )
    board = Dashboard(
        title=title,
        uid=uid,
        tags=["opsmesh"],
        panels=built,
        refresh="10s",
        time=DashboardTime("now-1h", "now"),
        timezone="utc",
    ).auto_panel_ids()
    data: dict[str, Any] = json.loads(json.dumps(board.to_json_data(), default=_encode))
    return data


def _encode(value: Any) -> Any:
    to_json = getattr(value, "to_json_data", None)
    if to_json is None:
        raise TypeError(f"cannot encode {value!r}")
    return to_json()


def dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON."""
    out = {"opsmesh-overview.json": dashboard("opsmesh-overview", "opsmesh: overview", overview())}
    for job in SERVICES:
        out[f"opsmesh-{job}.json"] = dashboard(
            f"opsmesh-{job}", f"opsmesh: {job}", [*own(job), *common(job)]
        )
    for stem, title, panels in exporter_dashboards.BOARDS:
        out[f"opsmesh-{stem}.json"] = dashboard(f"opsmesh-{stem}", title, panels())
    return out


def provisioning() -> str:
    return f"""# Written by opsmesh_dev.tools.dashboards: Grafana loads the generated dashboards.
apiVersion: 1

providers:
  - name: opsmesh
    folder: opsmesh
    type: file
    disableDeletion: true
    allowUiUpdates: false
    options:
      path: {MOUNTED_AT}
"""


def rendered() -> dict[Path, str]:
    """Every file the generator owns, with its text."""
    files = {
        OUT / name: json.dumps(board, indent=2, sort_keys=True) + "\n"
        for name, board in dashboards().items()
    }
    files[PROVISIONING] = provisioning()
    return files


def expressions() -> list[str]:
    """Every PromQL expression of every dashboard."""
    return [
        target["expr"]
        for board in dashboards().values()
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def main() -> int:
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path.relative_to(ROOT), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
