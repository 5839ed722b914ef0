"""The alert path histogram read back as the benchmark reads it: from two scrapes of a
Prometheus text exposition, per hop, quantiles as ``histogram_quantile`` interpolates."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from opsmesh.alert_path import AlertPathMetrics, Hop, buckets_by_hop, difference, quantile


def scrape(registry: CollectorRegistry) -> dict[str, dict[float, float]]:
    return buckets_by_hop(generate_latest(registry).decode())


def test_hops_read_back_between_two_scrapes() -> None:
    registry = CollectorRegistry()
    path = AlertPathMetrics(registry)
    path.observe(Hop.CLAIM, 5.0)  # before the run: not counted
    before = scrape(registry)
    path.observe(Hop.CLAIM, 0.004, times=90)  # in (0.0025, 0.005]
    path.observe(Hop.CLAIM, 0.4, times=10)  # in (0.3, 0.5]
    path.observe(Hop.DELIVERY, -0.5)  # two hosts' clocks: clamped to 0

    ran = difference(scrape(registry), before)

    assert set(ran) == {"claim", "delivery"}
    assert ran["claim"][float("inf")] == 100
    # rank 50 of 90 in (0.0025, 0.005]: 0.0025 + 0.0025 * 50 / 90
    assert quantile(ran["claim"], 0.5) == pytest.approx(0.0025 + 0.0025 * 50 / 90)
    # rank 99: 9th of the 10 in (0.3, 0.5]
    assert quantile(ran["claim"], 0.99) == pytest.approx(0.3 + 0.2 * 9 / 10)
    assert quantile(ran["delivery"], 0.5) == pytest.approx(0.0005)


def test_no_observations_have_no_quantile_and_the_inf_bucket_answers_its_lower_bound() -> None:
    registry = CollectorRegistry()
    path = AlertPathMetrics(registry)
    path.observe(Hop.FLUSH, 120.0)
    ran = scrape(registry)
    assert quantile(ran["flush"], 0.5) == 60.0
    assert quantile({0.1: 0.0, float("inf"): 0.0}, 0.5) is None
    assert quantile({}, 0.5) is None
