"""Every service runs its retention worker over its own tables: the running processes
export the purge metrics of exactly the tables ``docs/services.md`` says they purge. (The
purges themselves are tested with an injected clock in each part's ``test_retention.py``;
during the test session the services' purges are held off, ``tests/fixtures``.)"""

from __future__ import annotations

import re
import urllib.request

import pytest

from opsmesh_dev.tools.mesh import Mesh

pytestmark = pytest.mark.e2e

PURGED = {
    "alert-engine": {
        "alert_engine.alert_history",
        "alert_engine.suppressed_notifications",
        "alert_engine.notification_log",
        "alert_engine.series_seen",
    },
    "notifier": {"notifier.delivery_log", "notifier.slack_messages"},
    "health-aggregator": {"health_aggregator.status_history", "health_aggregator.checks"},
    "query-analyzer": {
        "query_analyzer.query_windows",
        "query_analyzer.query_stats",
        "query_analyzer.findings",
        "query_analyzer.plans",
        "query_analyzer.recommendations",
        "query_analyzer.route_profiles",
        "query_analyzer.profile_functions",
    },
    "metrics-ingest": {"metrics_ingest.series_admitted"},
}
_PURGED_ROWS = re.compile(r'^opsmesh_retention_purged_rows_total\{table="([a-z_.]+)"\}', re.M)


def exported_tables(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        return set(_PURGED_ROWS.findall(response.read().decode()))


def test_each_service_purges_its_own_tables(mesh: Mesh) -> None:
    found = {name: exported_tables(mesh.running[name].url) for name in PURGED}
    assert found == PURGED
