"""The deliver stage's metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from notifier.channels.base import SendResult
from notifier.pipeline.lanes import Destination


class DeliverMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "notifier_deliveries",
            "Delivery outcomes per integration",
            ["receiver", "integration", "outcome"],
            registry=registry,
        )
        self.attempts = Counter(
            "notifier_send_attempts",
            "Send attempts",
            ["receiver", "integration", "result"],
            registry=registry,
        )
        self.latency = Histogram(
            "notifier_delivery_seconds",
            "Request to delivered",
            ["receiver"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.pending = Gauge(
            "notifier_lane_pending",
            "Jobs queued per destination",
            ["destination"],
            registry=registry,
        )
        self.inflight = Gauge(
            "notifier_inflight_requests", "Requests consumed and not finished", registry=registry
        )

    def count_attempt(self, destination: Destination, outcome: SendResult) -> None:
        self.attempts.labels(
            destination.receiver,
            destination.integration,
            "ok" if outcome.ok else str(outcome.failure),
        ).inc()
