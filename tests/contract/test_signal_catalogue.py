"""The seam between the services that emit signals and the rules that read them.

Both sides are held to the signal catalogue (``opsmesh.catalogue``): every rule file and
rule test file shipped with the project may use only signals, stats and labels the
catalogue declares, and the real emitting code (the pure cores of metrics-ingest,
query-analyzer and health-aggregator, run on real inputs) may emit only signals the
catalogue declares, with the declared labels and stats. Names are never typed here:
they come from the catalogue or from what the code emitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from tests.contract.sdk_cache import Shop

from alert_engine.core.contract import rule_problems
from alert_engine.core.rules import Rule, parse_rules
from health_aggregator.core.checks import OwnedChecks
from health_aggregator.pipeline.health_stage import to_signal as health_signal
from metrics_ingest.pipeline.signals import cardinality_signal
from metrics_ingest.pipeline.signals import to_signal as rollup_signal
from metrics_ingest.rollup.windows import Rollups, WindowConfig
from notifier.core.purge_plan import DeadLetterCounts, PurgeFailure
from opsmesh import catalogue
from opsmesh.events.health import HealthReported, HealthStatus
from opsmesh.events.metrics import Bucket, MetricKind, MetricSampled
from opsmesh.events.profiles import ProfileRecorded
from opsmesh.events.signals import SignalObserved, SignalSource
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason
from opsmesh.kafka.producer import Outgoing
from opsmesh.selfreport import dead_letter_signals, lag_signals
from opsmesh.topics import NOTIFICATIONS, SIGNALS
from opsmesh_dev.testing.clock import FakeClock
from query_analyzer.core.advice import Measured, choose
from query_analyzer.core.candidates import IndexCandidate
from query_analyzer.core.findings import (
    index_advice_signal,
    n_plus_one_signal,
    regression_signal,
)
from query_analyzer.core.nplusone import QuerySpan, detect
from query_analyzer.core.regression import RegressionVerdict, assess
from query_analyzer.core.sketch import Sketch
from query_analyzer.core.slow_routes import RouteWindows, slow_route_signal

ROOT = Path(__file__).resolve().parents[2]
# Every rule file and rule test file shipped with the project.
RULE_FILES = [
    ROOT / "services/alert-engine/src/alert_engine/builtin_rules/default.yml",
    ROOT / "dev/src/opsmesh_dev/tools/resources/demo-rules.yml",
]
RULE_TEST_FILES = [ROOT / "services/alert-engine/src/alert_engine/builtin_rules/default_test.yml"]
T0 = 1_760_000_000.0


def input_problems(
    name: str,
    *,
    source: SignalSource | None,
    labels: Mapping[str, str],
    stats: Iterable[str],
) -> list[str]:
    """What in a rule test's input signal differs from what the services emit: its name,
    source, labels (exactly the declared ones; at least them for an application metric)
    and stats (declared ones; a test may leave any out)."""
    spec = catalogue.declared().get(name)
    if spec is None:
        return [f"signal `{name}`: no service emits it (see `opsmesh signals`)"]
    problems = []
    if source is not None and source is not spec.source:
        problems.append(f"source {source}: {name} comes from {spec.source}")
    application = name in {m.name for m in catalogue.APPLICATION_METRICS}
    given, declared = set(labels), set(spec.labels)
    problems.extend(
        f"label `{label}`: {name} has none" for label in sorted(given - declared) if not application
    )
    problems.extend(f"label `{label}`: missing" for label in sorted(declared - given))
    problems.extend(
        f"stat `{stat}`: {name} carries no such stat"
        for stat in sorted(set(stats) - set(spec.stats))
    )
    return problems


# Prometheus's own configuration and rules (PromQL, checked by promtool in test_compose.py),
# not opsmesh rule files, though they share the `groups` and `rule_files` keys.
PROMETHEUS_FORMAT = ROOT / "compose" / "prometheus"


def _yaml_files_with(key: str) -> set[Path]:
    found = set()
    for folder in ("services", "shared", "dev", "compose", "docs", "runbooks"):
        for path in (ROOT / folder).glob("**/*.y*ml"):
            if path.is_relative_to(PROMETHEUS_FORMAT):
                continue
            document = yaml.safe_load(path.read_text())
            if isinstance(document, dict) and key in document:
                found.add(path)
    return found


def test_the_shipped_rule_files_are_all_here() -> None:
    """A new rule file must join the lists above, or it escapes the contract."""
    assert _yaml_files_with("groups") == set(RULE_FILES)
    assert _yaml_files_with("rule_files") == set(RULE_TEST_FILES)


# -- rules: every signal, stat and label they use is emitted ---------------------------


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_shipped_rules_use_only_catalogued_signals_stats_and_labels(path: Path) -> None:
    rules = parse_rules(path.read_text(), str(path))
    assert rules
    problems = {rule.name: rule_problems(rule) for rule in rules}
    assert {name: p for name, p in problems.items() if p} == {}


@pytest.mark.parametrize("path", RULE_TEST_FILES, ids=lambda p: p.name)
def test_shipped_rule_tests_feed_what_the_services_emit(path: Path) -> None:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    problems = []
    for test in document["tests"]:
        for index, signal in enumerate(test.get("input_signals", [])):
            source = signal.get("source")
            found = input_problems(
                signal["name"],
                source=SignalSource(source) if source is not None else None,
                labels=signal.get("labels", {}),
                stats=signal.get("stats", {}),
            )
            problems += [f"{test['name']}: input_signals[{index}]: {p}" for p in found]
    assert problems == []


def _rule(**fields: Any) -> Rule:
    return Rule(name="R", **fields)


def test_the_rule_check_names_an_unknown_signal_stat_and_label() -> None:
    """The check can fail: the names the built-in rules used before the catalogue."""
    n_plus_one = catalogue.QUERY_N_PLUS_ONE
    assert rule_problems(_rule(signal=n_plus_one.name.removeprefix("query_"), threshold=1))
    [stat] = rule_problems(_rule(signal=n_plus_one.name, threshold=1, stat="p95"))
    assert stat.startswith("stat `p95`")
    [label] = rule_problems(
        _rule(
            signal=n_plus_one.name,
            threshold=1,
            annotations={"summary": "{{ labels.table }} {{ labels['severity'] }}"},
            labels={"severity": "page"},
        )
    )
    assert label.startswith("label `table` (in annotations.summary)")
    [matcher] = rule_problems(
        _rule(signal=n_plus_one.name, threshold=1, matchers={"job": "x"}, by=("fingerprint",))
    )
    assert matcher.startswith("label `job` (in matchers)")


def test_the_input_check_names_undeclared_and_missing_labels_and_stats() -> None:
    spec = catalogue.HEALTH_CHECK_STATUS
    labels = dict.fromkeys(spec.labels, "x")
    assert input_problems(spec.name, source=None, labels=labels, stats=[]) == []
    wrong = input_problems(
        spec.name,
        source=SignalSource.QUERIES,
        labels={**labels, "job": "x"},
        stats=["p95"],
    )
    assert len(wrong) == 3
    missing = input_problems(spec.name, source=None, labels={"service": "a"}, stats=[])
    assert len(missing) == len(spec.labels) - 1


# -- services: everything they emit is catalogued ---------------------------------------


def _signal(outgoing: Outgoing) -> SignalObserved:
    assert isinstance(outgoing.event, SignalObserved)
    assert outgoing.topic == SIGNALS
    return outgoing.event


def _rollups(samples: list[MetricSampled]) -> list[SignalObserved]:
    """Run metrics-ingest's rollup core over ``samples`` and close every window."""
    rollups = Rollups(WindowConfig(sizes_s=(60.0,), allowed_lateness_s=0, idle_grace_s=0))
    for offset, sample in enumerate(samples):
        rollups.add(sample, ("opsmesh.metrics", 0), offset)
    closed = rollups.close_due(T0 + 3600)
    return [_signal(rollup_signal(window, T0 + 3600)) for window in closed]


def _histogram(name: str, labels: dict[str, str], at: float, n: int) -> MetricSampled:
    # Cumulative buckets: a tenth of the requests slower than 1 s, all under 5 s.
    return MetricSampled(
        name=name,
        kind=MetricKind.HISTOGRAM,
        value=0.3 * n,
        labels=labels,
        sampled_at=at,
        buckets=[Bucket(0.1, 0.5 * n), Bucket(1.0, 0.9 * n), Bucket(5.0, 1.0 * n)],
        count=float(n),
    )


def sdk_cache_samples() -> list[MetricSampled]:
    """Everything an SDK cache with a client publishes: counters, gauges, latency
    histograms, its hit ratio and the margin to its target (the application metric)."""
    shop = Shop()
    try:
        return shop.minute(0.5) + shop.minute(0.9)
    finally:
        shop.close()


def metrics_ingest_signals() -> list[SignalObserved]:
    """A window of each metric kind, and of the application metrics the rules expect
    (the cache's as the SDK publishes them)."""
    error_ratio = catalogue.HTTP_ERROR_RATIO
    latency = catalogue.HTTP_REQUEST_DURATION_SECONDS
    samples = []
    for i in range(3):
        at = T0 + 10 * i
        samples += [
            MetricSampled(name="jobs_done", kind=MetricKind.COUNTER, value=5.0 * i, sampled_at=at),
            MetricSampled(name="queue_depth", kind=MetricKind.GAUGE, value=i, sampled_at=at),
            MetricSampled(
                name=error_ratio.name,
                kind=error_ratio.metric_kind,
                value=0.1,
                labels=dict.fromkeys(error_ratio.labels, "x"),
                sampled_at=at,
            ),
            _histogram(latency.name, dict.fromkeys(latency.labels, "x"), at, 100 * (i + 1)),
        ]
    signals = _rollups(samples + sdk_cache_samples())
    signals.append(_signal(cardinality_signal("jobs_done", rejected=3, limit=10, now=T0)))
    return signals


def query_analyzer_signals() -> list[SignalObserved]:
    """Findings from the pure cores: an N+1 in a trace, a p95 regression, index advice;
    a closed window of a route's profiles."""
    spans = [
        QuerySpan("t1", f"s{i}", "p1", "posts" if i == 0 else "authors", "SELECT 1", 20, i)
        for i in range(7)
    ]
    [found] = detect(spans)
    n_plus_one = n_plus_one_signal(found, database="shop", application="web", observed_at=T0)
    now, baseline = Sketch(), Sketch()
    for i in range(100):
        now.add(90 + i % 7)
        baseline.add(20 + i % 7)
    assessment = assess(now, baseline)
    assert assessment.verdict is RegressionVerdict.REGRESSED
    regression = regression_signal(
        assessment,
        database="shop",
        fingerprint="f1",
        display="SELECT 1",
        window_start=T0 - 300,
        window_end=T0,
        observed_at=T0,
    )
    candidate = IndexCandidate("public.orders", ("customer_id",))
    choice = choose(5000.0, [Measured(candidate, 40.0, used=True)])
    assert choice.candidate is not None
    assert choice.cost_after is not None
    advice = index_advice_signal(
        choice.candidate,
        database="shop",
        fingerprint="f2",
        cost_before=5000.0,
        cost_after=choice.cost_after,
        ddl="CREATE INDEX ...",
        observed_at=T0,
    )
    windows = RouteWindows()
    for ms in (120.0, 900.0, 1500.0):
        windows.add(_profile("/checkout", ms), now=T0)
    (window,) = windows.closed(now=T0 + 3600)
    slow_route = slow_route_signal(window, observed_at=T0 + 3600)
    return [n_plus_one, regression, advice, slow_route]


def _profile(route: str, duration_ms: float) -> ProfileRecorded:
    return ProfileRecorded(
        service="shop",
        instance="web-1",
        route=route,
        method="GET",
        status=200,
        reason="slow" if duration_ms >= 500 else "sampled",
        duration_ms=duration_ms,
        interval_ms=10.0,
        samples=0,
        functions=[],
        started_at=T0,
    )


def health_aggregator_signals() -> list[SignalObserved]:
    """Status changes: reported pass, reported fail, and a heartbeat whose TTL expired."""
    owned = OwnedChecks()
    changes = []
    for check, status in (("db", HealthStatus.PASS), ("db", HealthStatus.FAIL)):
        report = HealthReported(
            service="api", instance="api-1", check=check, status=status, reported_at=T0
        )
        change = owned.observe(report)
        assert change is not None
        changes.append(change)
    owned.observe(
        HealthReported(service="api", instance="api-2", status=HealthStatus.PASS, reported_at=T0)
    )
    changes += owned.expire(T0 + 3600)
    return [_signal(health_signal(c)) for c in changes]


def self_report_signals() -> list[SignalObserved]:
    """Every service's own readings: the DLQ publisher's counter, lag per partition."""
    dead_letters = DeadLetterPublisher(
        producer=None,  # type: ignore[arg-type]  # only its counter is read
        service="notifier",
        clock=FakeClock(T0),
        registry=CollectorRegistry(),
    ).records_total
    dead_letters.labels(NOTIFICATIONS.name, DeadLetterReason.DELIVERY_FAILED.value).inc(2)
    signals = dead_letter_signals(
        dead_letters, service="notifier", instance="n-1", topics=[NOTIFICATIONS.name], now=T0
    )
    return signals + lag_signals({("g", NOTIFICATIONS.name, 0): 12}, service="notifier", now=T0)


def notifier_signals() -> list[SignalObserved]:
    """The CDN purge worker's dead letters, one of each failure class."""
    counts = DeadLetterCounts()
    return [
        counts.signal("fastly", failure, attempts, T0, f"cdn:fastly: {failure}")
        for attempts, failure in enumerate(PurgeFailure)
    ]


EMITTERS = {
    "metrics-ingest": metrics_ingest_signals,
    "query-analyzer": query_analyzer_signals,
    "health-aggregator": health_aggregator_signals,
    "notifier": notifier_signals,
    "every service (self-report)": self_report_signals,
}


@pytest.mark.parametrize("service", EMITTERS)
def test_every_signal_a_service_emits_is_catalogued(service: str) -> None:
    signals = EMITTERS[service]()
    assert signals
    problems = {f"{s.name} {s.subject}": catalogue.problems(s) for s in signals}
    assert {k: v for k, v in problems.items() if v} == {}


def test_histogram_rollups_carry_every_quantile_and_the_latency_rule_reads_one() -> None:
    latency = catalogue.HTTP_REQUEST_DURATION_SECONDS
    [signal] = [s for s in metrics_ingest_signals() if s.name == latency.name]
    assert set(signal.stats) == set(latency.signal.stats)
    rules = parse_rules(RULE_FILES[0].read_text())
    readers = [r for r in rules if r.signal == latency.name]
    assert readers
    for rule in readers:
        assert rule.applies_to(signal)
        assert rule.observed_value(signal) is not None, rule.name


def test_every_catalogued_service_signal_is_emitted_by_some_service() -> None:
    """The catalogue lists nothing that no code produces."""
    emitted = {s.name for produce in EMITTERS.values() for s in produce()}
    declared = {s.name for s in catalogue.SERVICE_SIGNALS}
    declared |= {m.name for m in catalogue.APPLICATION_METRICS}
    assert declared <= emitted


def test_every_builtin_rule_reads_a_signal_a_service_emits() -> None:
    emitted = {s.name: s for produce in EMITTERS.values() for s in produce()}
    rules = parse_rules(RULE_FILES[0].read_text())
    unread = [r.name for r in rules if r.signal not in emitted]
    assert unread == []
    for rule in rules:
        if rule.signal in emitted and rule.stat is not None:
            assert rule.observed_value(emitted[rule.signal]) is not None, rule.name
