"""The signal catalogue: every signal the mesh puts on ``opsmesh.signals``, declared once.

A rule matches a signal by name, compares its value or one of its stats, and keys its
alerts by its labels. Those three are a contract between the service that emits the
signal and every rule file, so they are declared here, once: the emitting code builds
its signals from these declarations (``SignalSpec.observe``, the stat and label
constants), the built-in rules are checked against them (``tests/contract``),
``opsmesh signals`` lists them and ``docs/signals.md`` is generated from them.

Two families:

- **Service signals** have a fixed name: query findings, health status changes,
  metrics-ingest's own series-limit signal.
- **Rollups** carry the name of the application's metric: metrics-ingest closes a
  window of every series and emits it under the metric's name with the stats of its
  metric kind (``ROLLUPS``). The built-in rules expect a few conventional application
  metrics (``APPLICATION_METRICS``); an application that publishes them under these
  names and labels gets the built-in alerts.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from opsmesh.events.metrics import MetricKind
from opsmesh.events.signals import SignalKind, SignalObserved, SignalSource


class Service(enum.StrEnum):
    METRICS_INGEST = "metrics-ingest"
    QUERY_ANALYZER = "query-analyzer"
    HEALTH_AGGREGATOR = "health-aggregator"
    NOTIFIER = "notifier"
    EVERY_SERVICE = "every service"  # the mesh observing itself


class RollupStat(enum.StrEnum):
    """The stats of a closed rollup window (``SignalObserved.stats``)."""

    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    MEAN = "mean"
    INCREASE = "increase"
    RATE = "rate"
    P50 = "p50"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"


# Quantiles a histogram window carries, interpolated within buckets like PromQL's
# histogram_quantile over the window's bucket increases.
HISTOGRAM_QUANTILES: Mapping[float, RollupStat] = MappingProxyType(
    {0.5: RollupStat.P50, 0.9: RollupStat.P90, 0.95: RollupStat.P95, 0.99: RollupStat.P99}
)


@dataclass(frozen=True, slots=True)
class StatSpec:
    meaning: str
    always: bool = True  # False: present only when there is data for it


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One signal: who emits it, what its value means, its labels and its stats.

    ``labels`` are exactly the labels every instance carries (a rule may match, group
    and template on them); ``stats`` the statistics it may carry (``always`` ones on
    every instance).
    """

    name: str
    source: SignalSource
    kind: SignalKind
    emitted_by: Service
    summary: str
    value: str  # what ``value`` means, with its unit
    labels: Mapping[str, str] = field(default_factory=dict)  # label -> meaning
    stats: Mapping[str, StatSpec] = field(default_factory=dict)

    def observe(
        self,
        *,
        subject: str,
        labels: Mapping[str, str],
        value: float,
        observed_at: float,
        stats: Mapping[str, float] | None = None,
        window_start: float | None = None,
        window_end: float | None = None,
        detail: str | None = None,
    ) -> SignalObserved:
        """The signal, built to this declaration (raises ValueError where it is not)."""
        signal = SignalObserved(
            source=self.source,
            kind=self.kind,
            name=self.name,
            subject=subject,
            labels=dict(labels),
            value=value,
            stats=dict(stats or {}),
            window_start=window_start,
            window_end=window_end,
            observed_at=observed_at,
            detail=detail,
        )
        problems = self.problems(signal)
        if problems:
            raise ValueError(f"signal {self.name} breaks its declaration: {'; '.join(problems)}")
        return signal

    def problems(self, signal: SignalObserved) -> list[str]:
        """How ``signal`` differs from this declaration (empty if it conforms)."""
        found = []
        if signal.source is not self.source or signal.kind is not self.kind:
            found.append(
                f"source/kind {signal.source}/{signal.kind}, declared {self.source}/{self.kind}"
            )
        found.extend(_set_problems("label", set(signal.labels), set(self.labels), set(self.labels)))
        always = {name for name, stat in self.stats.items() if stat.always}
        found.extend(_set_problems("stat", set(signal.stats), set(self.stats), always))
        return found


def _set_problems(what: str, got: set[str], allowed: set[str], required: set[str]) -> list[str]:
    out = [f"undeclared {what} {name!r}" for name in sorted(got - allowed)]
    out.extend(f"missing {what} {name!r}" for name in sorted(required - got))
    return out


# -- rollups (metrics-ingest) -----------------------------------------------------------

_BASE_STATS: Mapping[str, StatSpec] = {
    RollupStat.COUNT: StatSpec("samples in the window"),
    RollupStat.SUM: StatSpec("sum of the samples' values"),
    RollupStat.MIN: StatSpec("smallest sample value"),
    RollupStat.MAX: StatSpec("largest sample value"),
    RollupStat.LAST: StatSpec("the newest sample's value (event time)"),
    RollupStat.MEAN: StatSpec("sum / count"),
}
_COUNTER_STATS: Mapping[str, StatSpec] = {
    **_BASE_STATS,
    RollupStat.INCREASE: StatSpec("increase within the window, counter resets handled"),
    RollupStat.RATE: StatSpec("increase / window length, per second"),
}
_HISTOGRAM_STATS: Mapping[str, StatSpec] = {
    **_BASE_STATS,
    **{
        stat: StatSpec(
            f"{q:g} quantile of the observations in the window, interpolated within buckets"
            " (histogram_quantile); needs two samples of the series in the window",
            always=False,
        )
        for q, stat in HISTOGRAM_QUANTILES.items()
    },
}


@dataclass(frozen=True, slots=True)
class RollupSpec:
    """The closed window of one series of one metric kind; named after the metric."""

    metric_kind: MetricKind
    value: str
    stats: Mapping[str, StatSpec]

    def for_metric(self, name: str, labels: Mapping[str, str], summary: str) -> SignalSpec:
        return SignalSpec(
            name=name,
            source=SignalSource.METRICS,
            kind=SignalKind.ROLLUP,
            emitted_by=Service.METRICS_INGEST,
            summary=summary,
            value=self.value,
            labels=labels,
            stats=self.stats,
        )

    def problems(self, signal: SignalObserved) -> list[str]:
        """Like ``SignalSpec.problems``, for a rollup of any metric with any labels."""
        spec = self.for_metric(signal.name, signal.labels, "")
        return spec.problems(signal)


ROLLUPS: Mapping[MetricKind, RollupSpec] = MappingProxyType(
    {
        MetricKind.COUNTER: RollupSpec(
            MetricKind.COUNTER,
            "per-second rate of increase in the window (= stat rate)",
            _COUNTER_STATS,
        ),
        MetricKind.GAUGE: RollupSpec(
            MetricKind.GAUGE, "the newest sample's value (= stat last)", _BASE_STATS
        ),
        MetricKind.HISTOGRAM: RollupSpec(
            MetricKind.HISTOGRAM,
            "mean of the samples' values (the histogram's cumulative sum); rules on"
            " latency read a quantile stat (p95) instead",
            _HISTOGRAM_STATS,
        ),
    }
)


@dataclass(frozen=True, slots=True)
class ApplicationMetric:
    """A metric the built-in rules expect applications to publish (a convention)."""

    name: str
    metric_kind: MetricKind
    meaning: str
    labels: Mapping[str, str]

    @property
    def signal(self) -> SignalSpec:
        return ROLLUPS[self.metric_kind].for_metric(self.name, self.labels, self.meaning)


HTTP_ERROR_RATIO = ApplicationMetric(
    name="http_error_ratio",
    metric_kind=MetricKind.GAUGE,
    meaning="share of the service's requests that failed, 0..1",
    labels={"service": "the application", "env": "its environment (prod, demo ...)"},
)
HTTP_REQUEST_DURATION_SECONDS = ApplicationMetric(
    name="http_request_duration_seconds",
    metric_kind=MetricKind.HISTOGRAM,
    meaning="request latency in seconds, as a cumulative histogram",
    labels={"service": "the application", "route": "the request's route"},
)
CACHE_HIT_RATIO_MARGIN = ApplicationMetric(
    name="cache_hit_ratio_margin",
    metric_kind=MetricKind.GAUGE,
    meaning="a cache namespace's hit ratio (lookups answered by L1 or L2 / all lookups, over"
    " the SDK cache's ratio window, 5 min by default) minus the target the namespace"
    " declares; below 0: under target. The SDK's cache publishes it when given a client",
    labels={
        "service": "the application",
        "instance": "its instance: each has its own L1",
        "namespace": "the cache namespace",
        "target": "the hit-ratio target the namespace declares, 0..1: 0.95, 0.8 ...",
    },
)
APPLICATION_METRICS: tuple[ApplicationMetric, ...] = (
    HTTP_ERROR_RATIO,
    HTTP_REQUEST_DURATION_SECONDS,
    CACHE_HIT_RATIO_MARGIN,
)
_APPLICATION_BY_NAME = {m.name: m for m in APPLICATION_METRICS}


# -- service signals --------------------------------------------------------------------

QUERY_P95_REGRESSION = SignalSpec(
    name="query_p95_regression",
    source=SignalSource.QUERIES,
    kind=SignalKind.FINDING,
    emitted_by=Service.QUERY_ANALYZER,
    summary="a query fingerprint's p95 latency regressed against its own baseline",
    value="p95 now / p95 of the baseline windows (a ratio, e.g. 2.0 = twice as slow)",
    labels={
        "database": "the database the query ran on",
        "fingerprint": "the query fingerprint",
        "finding": "p95_regression",
    },
    stats={
        "p95_now_ms": StatSpec("p95 latency of the recent windows, ms"),
        "p95_baseline_ms": StatSpec("p95 latency of the baseline windows, ms"),
        "calls_now": StatSpec("calls in the recent windows"),
        "calls_baseline": StatSpec("calls in the baseline windows"),
    },
)
QUERY_N_PLUS_ONE = SignalSpec(
    name="query_n_plus_one",
    source=SignalSource.QUERIES,
    kind=SignalKind.FINDING,
    emitted_by=Service.QUERY_ANALYZER,
    summary="one request ran the same query many times under one parent span (N+1)",
    value="repeats of the query under one parent span (a count)",
    labels={
        "database": "the database the queries ran on",
        "application": "the application that sent them",
        "fingerprint": "the repeated query's fingerprint",
        "finding": "n_plus_one",
    },
    stats={
        "repeats": StatSpec("repeats of the query under one parent span"),
        "total_ms": StatSpec("their total duration, ms"),
    },
)
QUERY_INDEX_ADVISED = SignalSpec(
    name="query_index_advised",
    source=SignalSource.QUERIES,
    kind=SignalKind.FINDING,
    emitted_by=Service.QUERY_ANALYZER,
    summary="an index validated with HypoPG would cut a slow query's planned cost",
    value="estimated cost reduction of the query, 0..1 (1 - cost after / cost before)",
    labels={
        "database": "the database the query ran on",
        "fingerprint": "the query fingerprint",
        "table": "the table to index",
        "columns": "the index's columns, comma-separated",
        "finding": "index_advised",
    },
    stats={
        "cost_before": StatSpec("planner cost without the index"),
        "cost_after": StatSpec("planner cost with the hypothetical index"),
    },
)
ROUTE_PROFILED_DURATION = SignalSpec(
    name="route_profiled_duration",
    source=SignalSource.QUERIES,
    kind=SignalKind.ROLLUP,
    emitted_by=Service.QUERY_ANALYZER,
    summary="a closed window (QUERY_ANALYZER_WINDOW_S) of a route's request profiles, as"
    " the SDK publishes them: every request at least its slow threshold plus a sample of"
    " the others, so it reads how slow the route's slow requests are",
    value="p95 (nearest rank) of the profiled requests' durations in the window, ms",
    labels={
        "service": "the application",
        "route": "the request's route",
    },
    stats={
        "count": StatSpec("profiled requests in the window"),
        "slow": StatSpec("of them, profiled for being at least the slow threshold"),
        "mean_ms": StatSpec("their mean duration, ms"),
        "max_ms": StatSpec("the slowest one's duration, ms"),
    },
)
HEALTH_CHECK_STATUS = SignalSpec(
    name="health_check_status",
    source=SignalSource.HEALTH,
    kind=SignalKind.STATUS,
    emitted_by=Service.HEALTH_AGGREGATOR,
    summary="a health check changed status (reported, or its TTL expired), or was"
    " deregistered (silent past its TTL for HEALTH_AGGREGATOR_DEREGISTER_AFTER_DAYS)",
    value="0 pass, 1 warn, 2 fail; 0 when deregistered (it no longer fails anything)",
    labels={
        "service": "the reporting service",
        "instance": "its instance",
        "check": "the check (heartbeat, db ...)",
        "cause": "reported | ttl_expired | deregistered",
    },
)
METRICS_SERIES_LIMITED = SignalSpec(
    name="metrics_ingest_series_limited",
    source=SignalSource.METRICS,
    kind=SignalKind.FINDING,
    emitted_by=Service.METRICS_INGEST,
    summary="samples of new series were rejected: a metric reached its series limit, or"
    " the group reached a global one",
    value="samples rejected since the last report (a count)",
    labels={
        "metric": "the metric name (* for a global limit)",
        "limit": "which limit: per_metric, series (all series) or metric_names",
    },
    stats={
        "limit": StatSpec("the series limit per metric"),
        "rejected": StatSpec("samples rejected (= value)"),
    },
)
CDN_PURGE_DEAD_LETTERED = SignalSpec(
    name="cdn_purge_dead_lettered",
    source=SignalSource.MESH,
    kind=SignalKind.FINDING,
    emitted_by=Service.NOTIFIER,
    summary="the notifier dead-lettered a CDN purge for a provider: the provider refused it"
    " (a deterministic error), its retries ran out, or the provider is not configured",
    value="purges of this provider this notifier instance dead-lettered since it started"
    " (a running count; each dead letter emits the signal once)",
    labels={
        "provider": "the CDN provider's configured name",
        "failure": "deterministic | retries_exhausted | not_configured",
    },
    stats={
        "attempts": StatSpec("calls made to the provider for this purge"),
    },
)

# The mesh observing itself: every service reports its own readings periodically
# (``opsmesh.selfreport``), so the pipeline is alertable without a Prometheus server.
MESH_DEAD_LETTERS = SignalSpec(
    name="mesh_dead_letters",
    source=SignalSource.MESH,
    kind=SignalKind.STATUS,
    emitted_by=Service.EVERY_SERVICE,
    summary="records a service instance sent to the dead-letter topic, reported periodically",
    value="dead-lettered records since the instance started (a running total; a restart"
    " starts again from 0, so read it with a rate rule)",
    labels={
        "service": "the reporting service",
        "instance": "its instance",
        "source_topic": "the topic the dead-lettered records came from",
    },
)
MESH_CONSUMER_LAG = SignalSpec(
    name="mesh_consumer_lag",
    source=SignalSource.MESH,
    kind=SignalKind.STATUS,
    emitted_by=Service.EVERY_SERVICE,
    summary="how far a service's consumer group is behind each partition it consumes,"
    " reported periodically by each instance (replicas report the same readings)",
    value="records between the group's committed offset and the partition's end offset"
    " (what kafka-consumer-groups shows; it grows while a consumer is stalled)",
    labels={
        "service": "the consuming service",
        "group": "its consumer group",
        "topic": "the consumed topic",
        "partition": "the partition number",
    },
)

SERVICE_SIGNALS: tuple[SignalSpec, ...] = (
    QUERY_P95_REGRESSION,
    QUERY_N_PLUS_ONE,
    QUERY_INDEX_ADVISED,
    ROUTE_PROFILED_DURATION,
    HEALTH_CHECK_STATUS,
    METRICS_SERIES_LIMITED,
    CDN_PURGE_DEAD_LETTERED,
    MESH_DEAD_LETTERS,
    MESH_CONSUMER_LAG,
)


@functools.cache
def declared() -> Mapping[str, SignalSpec]:
    """Every signal a rule may name, by name: the service signals and the conventional
    application metrics' rollups."""
    out: dict[str, SignalSpec] = {}
    for spec in (*SERVICE_SIGNALS, *(m.signal for m in APPLICATION_METRICS)):
        if spec.name in out:
            raise ValueError(f"signal {spec.name} is declared twice")
        out[spec.name] = spec
    return MappingProxyType(out)


def problems(signal: SignalObserved) -> list[str]:
    """How an emitted signal differs from the catalogue (empty if it conforms).

    A rollup may carry any metric name: it must carry the stats of one metric kind (and
    a conventional application metric's name, that metric's kind and labels).
    """
    metric = _APPLICATION_BY_NAME.get(signal.name)
    if metric is not None:
        # The application chooses its labels; the convention only needs the declared ones.
        missing = set(metric.labels) - set(signal.labels)
        return ROLLUPS[metric.metric_kind].problems(signal) + [
            f"missing label {name!r}" for name in sorted(missing)
        ]
    spec = declared().get(signal.name)
    if spec is not None:
        return spec.problems(signal)
    if signal.source is SignalSource.METRICS and signal.kind is SignalKind.ROLLUP:
        fits = [r.problems(signal) for r in ROLLUPS.values()]
        if any(not p for p in fits):
            return []
        return [f"stats {sorted(signal.stats)} are not those of any metric kind's rollup"]
    return [f"signal {signal.name!r} ({signal.source}/{signal.kind}) is not in the catalogue"]
