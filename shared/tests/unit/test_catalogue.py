"""The signal catalogue: declarations hold what emitters build, and say what differs."""

from __future__ import annotations

import pytest

from opsmesh import catalogue
from opsmesh.events.metrics import MetricKind
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource

SPEC = catalogue.QUERY_N_PLUS_ONE
LABELS = dict.fromkeys(SPEC.labels, "x")
STATS = dict.fromkeys(SPEC.stats, 1.0)


def test_observe_builds_the_declared_signal() -> None:
    signal = SPEC.observe(subject="s", labels=LABELS, value=3, stats=STATS, observed_at=1.0)
    assert (signal.name, signal.source, signal.kind) == (SPEC.name, SPEC.source, SPEC.kind)
    assert catalogue.problems(signal) == []


@pytest.mark.parametrize(
    ("labels", "stats", "expected"),
    [
        ({**LABELS, "job": "x"}, STATS, "undeclared label 'job'"),
        ({k: v for k, v in LABELS.items() if k != "database"}, STATS, "missing label 'database'"),
        (LABELS, {**STATS, "p95": 1.0}, "undeclared stat 'p95'"),
        (LABELS, {}, "missing stat 'repeats'"),
    ],
)
def test_observe_refuses_what_the_declaration_does_not_say(
    labels: dict[str, str], stats: dict[str, float], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        SPEC.observe(subject="s", labels=labels, value=3, stats=stats, observed_at=1.0)


def _rollup(name: str, stats: list[str], **labels: str) -> SignalObserved:
    return SignalObserved(
        source=SignalSource.METRICS,
        kind=SignalKind.ROLLUP,
        name=name,
        subject=name,
        labels=labels,
        value=1.0,
        stats=dict.fromkeys(stats, 1.0),
        observed_at=1.0,
    )


def test_a_rollup_of_any_metric_has_the_stats_of_one_metric_kind() -> None:
    gauge = list(catalogue.ROLLUPS[MetricKind.GAUGE].stats)
    counter = list(catalogue.ROLLUPS[MetricKind.COUNTER].stats)
    assert catalogue.problems(_rollup("anything", gauge, a="b")) == []
    assert catalogue.problems(_rollup("anything", counter)) == []
    assert catalogue.problems(_rollup("anything", [*gauge, "p95"])) == []  # histogram
    assert catalogue.problems(_rollup("anything", [*counter, "p95"]))  # no kind has both
    assert catalogue.problems(_rollup("anything", ["count"]))


def test_an_application_metric_keeps_its_kind_and_needs_its_labels() -> None:
    metric = catalogue.HTTP_REQUEST_DURATION_SECONDS
    stats = [n for n, s in metric.signal.stats.items() if s.always]
    labels = dict.fromkeys(metric.labels, "x")
    assert catalogue.problems(_rollup(metric.name, stats, **labels, pod="p")) == []
    assert catalogue.problems(_rollup(metric.name, stats)) == [
        f"missing label {label!r}" for label in sorted(metric.labels)
    ]
    counter = list(catalogue.ROLLUPS[MetricKind.COUNTER].stats)
    assert catalogue.problems(_rollup(metric.name, counter, **labels))


def test_a_signal_no_one_declared_is_named() -> None:
    unknown = SignalObserved(
        source=SignalSource.QUERIES,
        kind=SignalKind.FINDING,
        name="n_plus_one",
        subject="s",
        value=1.0,
        observed_at=1.0,
    )
    assert catalogue.problems(unknown) == [
        "signal 'n_plus_one' (queries/finding) is not in the catalogue"
    ]


def test_names_are_unique_and_quantile_stats_are_declared() -> None:
    assert len(catalogue.declared()) == len(catalogue.SERVICE_SIGNALS) + len(
        catalogue.APPLICATION_METRICS
    )
    histogram = catalogue.ROLLUPS[MetricKind.HISTOGRAM].stats
    assert set(catalogue.HISTOGRAM_QUANTILES.values()) <= set(histogram)
