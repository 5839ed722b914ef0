"""The engine's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts_received = Counter(
            "alert_engine_alerts_received",
            "Alerts ingested",
            ["source", "outcome"],
            registry=registry,
        )
        self.transitions = Counter(
            "alert_engine_transitions", "Rule alert state transitions", ["state"], registry=registry
        )
        self.notifications = Counter(
            "alert_engine_notifications_requested",
            "Notification requests by reason",
            ["receiver", "reason"],
            registry=registry,
        )
        self.suppressed = Counter(
            "alert_engine_notifications_suppressed",
            "Due flushes that sent nothing, by reason",
            ["receiver", "reason"],
            registry=registry,
        )
        self.groups = Gauge(
            "alert_engine_aggregation_groups", "Aggregation groups", registry=registry
        )
        self.alerts = Gauge("alert_engine_alerts", "Active alerts", ["state"], registry=registry)
        self.listings = Counter(
            "alert_engine_api_listings",
            "Alert and group listings answered, by where their alerts were read",
            ["read"],
            registry=registry,
        )
