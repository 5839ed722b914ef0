"""The SDK cache's hit ratio, through metrics-ingest's rollups, into the built-in
CacheHitRatioBelowTarget rule as ``opsmesh setup-default-alerts`` installs it.

Nothing is typed on both sides: the samples are what an SDK cache given a client really
publishes (its names are the SDK's, held equal to the catalogue's here), their windows are
closed by metrics-ingest's own rollup core, and the rule is the shipped file's, evaluated
by alert-engine's own evaluator, on one fake clock. The same path over real Kafka and the
five services is ``tests/e2e/test_builtin_rules.py::test_cache_hit_ratio_below_target``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.contract.sdk_cache import MINUTE, Shop

from alert_engine.cli import builtin_text
from alert_engine.core.evaluation import Evaluator
from alert_engine.core.rules import parse_rules
from metrics_ingest.pipeline.signals import to_signal
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from opsmesh import catalogue
from opsmesh.events.alerts import AlertState
from opsmesh.events.signals import SignalObserved
from opsmesh_client.cache import observed as cache_metrics

RULE = "CacheHitRatioBelowTarget"


def test_the_sdk_publishes_the_catalogues_metric_under_its_name() -> None:
    metric = catalogue.CACHE_HIT_RATIO_MARGIN
    assert metric.name == cache_metrics.HIT_RATIO_MARGIN
    rules = parse_rules(builtin_text())
    [rule] = [r for r in rules if r.name == RULE]
    assert rule.signal == metric.name


@pytest.fixture
def shop() -> Iterator[Shop]:
    made = Shop()
    yield made
    made.close()


def test_a_namespace_under_its_target_fires_the_builtin_rule_and_recovers(shop: Shop) -> None:
    rollups = Rollups(WindowConfig(sizes_s=(MINUTE,), allowed_lateness_s=0, idle_grace_s=0))
    evaluator = Evaluator(parse_rules(builtin_text()))
    offset = 0
    firing: dict[float, list[str]] = {}
    margins: list[SignalObserved] = []
    # 85 % of lookups hit for 15 minutes, then every one.
    for minute in range(35):
        samples = shop.minute(0.85 if minute < 15 else 1.0)
        for sample in samples:
            rollups.add(sample, ("opsmesh.metrics", 0), offset)
            offset += 1
        now = shop.clock.now
        for window in rollups.close_due(now):
            signal = to_signal(window, now).event
            assert isinstance(signal, SignalObserved)
            assert catalogue.problems(signal) == [], signal.name
            if signal.name == catalogue.CACHE_HIT_RATIO_MARGIN.name:
                margins.append(signal)
                evaluator.observe(signal, now)
        evaluator.tick(now)
        firing[now] = [
            a.annotations["summary"]
            for a in evaluator.active()
            if a.rule == RULE and a.state is AlertState.FIRING
        ]

    assert margins
    assert margins[0].labels == {
        "service": "shop",
        "instance": "web-1",
        "namespace": "static",
        "target": "0.95",
    }
    times = sorted(firing)
    fired = [t for t in times if firing[t]]
    assert fired, "the rule never fired"
    first = fired[0]
    # Under target from the first closed window on; firing once that has held for 10 min.
    assert first - margins[0].observed_at >= 10 * MINUTE
    assert first - margins[0].observed_at <= 12 * MINUTE
    [summary] = firing[first]
    assert summary == (
        "shop cache namespace static on web-1: hit ratio 85.0%, below its 95% target"
    )
    # Every lookup hits from minute 15; the 5-minute window is back over 95 % within it,
    # and the alert resolves 5 minutes (keep_firing_for) after that.
    assert firing[times[-1]] == []
    assert fired[-1] < shop.clock.now - 5 * MINUTE
