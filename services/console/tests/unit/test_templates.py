"""The pages the end-to-end tests reach only without data (no plan captured, no status
change, nothing held back), rendered here with data in the services' documented shapes:
a misspelt field fails here (StrictUndefined), not in front of an engineer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.core.alerts import ReceiverLoad, build_page
from console.core.plans import plan_tree
from console.core.shapes import Alert, AlertGroup, AlertStatus, PendingAlert, Receiver
from console.core.theme import Theme
from console.core.trends import SPANS, span_of, trend_of
from console.rendering import environment
from console.upstream import UpstreamError

BASE: dict[str, Any] = {
    "session": None,
    "csrf": "",
    "can_write": False,
    "path": "/",
    "here": "/",
    "theme": Theme.SYSTEM,
    "themes": list(Theme),
}


def render(name: str, **values: Any) -> str:
    return environment().get_template(name).render(**BASE, **values)


def test_a_query_page_shows_its_plan_as_a_tree_with_the_costly_node_marked() -> None:
    explained = [
        {
            "Plan": {
                "Node Type": "Nested Loop",
                "Total Cost": 1000.0,
                "Plans": [
                    {
                        "Node Type": "Seq Scan",
                        "Relation Name": "orders",
                        "Total Cost": 950.0,
                        "Plan Rows": 300000,
                        "Filter": "(customer_id = 7)",
                    },
                    {
                        "Node Type": "Index Scan",
                        "Relation Name": "customers",
                        "Index Name": "customers_pkey",
                        "Total Cost": 8.0,
                    },
                ],
            }
        }
    ]
    stats = {
        "fingerprint": "0123456789abcdef",
        "fingerprint_version": "1",
        "database": "shop",
        "display_sql": "SELECT * FROM orders WHERE customer_id = $1",
        "calls": 10,
        "total_ms": 900.0,
        "mean_ms": 90.0,
        "p95_ms": 120.0,
    }
    advice = {
        "fingerprint": "0123456789abcdef",
        "table_name": "orders",
        "validated": True,
        "ddl": "CREATE INDEX CONCURRENTLY ON orders (customer_id)",
        "cost_before": 950.0,
        "cost_after": 8.5,
        "reason": "seq scan with a selective filter",
        "evidence": {"rows": 300000},
    }
    span = span_of("1d")
    windows = [
        {"start": 7200.0 * 3600, "calls": 4, "p95_ms": 100.0},
        {"start": 7201.0 * 3600, "calls": 6, "p95_ms": 150.0},
    ]
    html = render(
        "query.html",
        trends={
            "value": {("0123456789abcdef", "shop", "1"): trend_of(windows, span)},
            "error": None,
        },
        span=span,
        spans=list(SPANS.values()),
        query={
            "fingerprint": "0123456789abcdef",
            "stats": [stats],
            "findings": [],
            "recommendations": [advice],
        },
        plans=[
            {
                "stored": {
                    "database": "shop",
                    "source": "explain",
                    "captured_at": 1.8e9,
                    "problems": [{"kind": "seq_scan_with_filter"}],
                },
                "tree": plan_tree(explained),
                "problem": None,
            }
        ],
    )
    assert html.count('class="plan-node') == 3
    assert html.count("plan-node costly") == 1
    assert "<code>orders</code>" in html
    assert "CREATE INDEX CONCURRENTLY ON orders (customer_id)" in html
    assert "seq_scan_with_filter" in html
    assert "950 → 8" in html
    assert "+50% slower" in html  # the latest hour's p95 against the hour before
    assert html.count("<polyline") == 1
    assert 'aria-label="p95 per hour, last day: 2 buckets with calls' in html


def test_the_queries_board_shows_each_fingerprints_trend_or_says_why_not() -> None:
    span = span_of("2h")
    row = {
        "fingerprint": "0123456789abcdef",
        "fingerprint_version": "1",
        "database": "shop",
        "display_sql": "SELECT 1",
        "calls": 3,
        "total_ms": 30.0,
        "mean_ms": 10.0,
        "p95_ms": 12.0,
    }
    steady = [
        {"start": 600.0, "calls": 1, "p95_ms": 10.0},
        {"start": 900.0, "calls": 2, "p95_ms": 10.2},
    ]
    values: dict[str, Any] = {
        "span": span,
        "spans": list(SPANS.values()),
        "findings": {"value": [], "error": None},
        "advice": {"value": [], "error": None},
        "sort": "total",
        "sorts": ["total", "p95", "calls"],
    }
    html = render(
        "queries.html",
        top={"value": [row], "error": None},
        trends={
            "value": {("0123456789abcdef", "shop", "1"): trend_of(steady, span)},
            "error": None,
        },
        **values,
    )
    assert "p95 per 5 minutes, last 2 hours" in html
    assert "+2%" in html
    assert "trend-steady" in html
    failed = render(
        "queries.html",
        top={"value": [row], "error": None},
        trends={"value": {}, "error": "query-analyzer: unreachable"},
        **values,
    )
    assert "Trends: query-analyzer: unreachable" in failed
    assert "<polyline" not in failed


def test_a_service_page_shows_checks_ttls_and_transitions() -> None:
    detail = {
        "service": "checkout",
        "status": "warn",
        "policy": "quorum",
        "reason": "quorum_met",
        "healthy": 1,
        "total": 2,
        "checks": [
            {
                "instance": "i-1",
                "check": "db",
                "status": "fail",
                "critical": True,
                "output": "timeout",
                "reported_at": 1000.0,
                "expires_at": 1030.0,
            }
        ],
        "history": [
            {
                "instance": "i-1",
                "check": "db",
                "previous": "pass",
                "status": "fail",
                "cause": "ttl",
                "at": 1010.0,
            }
        ],
    }
    html = render("health_service.html", detail=detail, now=1010.0)
    assert "20s" in html  # TTL left
    assert "pass → fail" in html


def test_notifications_show_receivers_held_notifications_and_a_failed_part() -> None:
    html = render(
        "notifications.html",
        receivers={"value": None, "error": str(UpstreamError("notifier", None, "unreachable"))},
        held={
            "value": [
                {
                    "at": 1000.0,
                    "receiver": "pager",
                    "group_key": '{}:{a="b"}',
                    "reason": "rate_limited",
                }
            ],
            "error": None,
        },
        load={},
    )
    assert "notifier: unreachable" in html
    assert "rate_limited" in html


def test_label_values_are_escaped_not_run() -> None:
    """Alert labels come from whoever can post alerts: they are text on the page."""
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    alert = Alert(
        {"alertname": evil, "team": evil},
        "fp1",
        datetime.fromtimestamp(1000, UTC),
        AlertStatus("active"),
    )
    pending = PendingAlert(fingerprint="p", rule=evil, labels={"alertname": evil, "x": evil})
    view = build_page(
        [AlertGroup({"alertname": evil}, Receiver(evil), [alert])], (), now=1060, pending=[pending]
    )
    html = render(
        "_groups.html",
        view=view,
        filter=evil,
        filter_error=None,
        state="all",
        feed_error=None,
        read_at=None,
    )
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html


def test_notifications_show_each_receivers_load() -> None:
    html = render(
        "notifications.html",
        receivers={"value": [{"name": "pager", "integrations": ["webhook-0"]}], "error": None},
        held={"value": [], "error": None},
        load={"pager": ReceiverLoad("pager", groups=3, active=7, suppressed=2)},
    )
    assert "<td>pager</td><td>webhook-0</td>" in html
    assert "<td>3</td><td>7</td><td>2</td>" in " ".join(html.split()).replace("> <", "><")
