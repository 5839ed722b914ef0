"""Publish an existing ``prometheus_client`` registry into the mesh, unchanged.

    from opsmesh_client.prometheus import bridge
    bridge(client)                    # the default REGISTRY
    bridge(client, registry=my_registry)

Every collection reads the registry as Prometheus would scrape it and turns each series
into a sample: counters (``_total``), gauges and untyped as they are, histograms with their
buckets, summaries as their ``_sum`` and ``_count`` counters and quantile gauges. The
client's constant labels (service, instance) are added unless the series has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opsmesh_client.metrics import METRIC_NAME
from opsmesh_client.wire import Record, metric_sample

if TYPE_CHECKING:
    from opsmesh_client.client import Client


def bridge(client: Client, registry: Any = None) -> None:
    if registry is None:
        from prometheus_client import REGISTRY  # noqa: PLC0415 - an optional dependency

        registry = REGISTRY
    constant = {"service": client.settings.service, "instance": client.settings.instance}
    client.metrics.add_collector(lambda at: collect(registry, at, constant))


def _labels(sample: Any, constant: Mapping[str, str], drop: str = "") -> dict[str, str]:
    return {**constant, **{k: str(v) for k, v in sample.labels.items() if k != drop}}


def collect(registry: Any, at: float, constant: Mapping[str, str]) -> Iterable[Record]:
    records: list[Record] = []
    for family in registry.collect():
        if family.type == "histogram":
            records.extend(_histograms(family, at, constant))
            continue
        kind = {"counter": "counter", "summary": "counter"}.get(family.type, "gauge")
        if family.type in ("info", "stateset", "gaugehistogram"):
            continue
        for sample in family.samples:
            if sample.name.endswith("_created") or METRIC_NAME.match(sample.name) is None:
                continue
            sample_kind = "gauge" if "quantile" in sample.labels else kind
            records.append(
                metric_sample(sample.name, sample_kind, sample.value, _labels(sample, constant), at)
            )
    return records


def _histograms(family: Any, at: float, constant: Mapping[str, str]) -> list[Record]:
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in family.samples:
        labels = _labels(sample, constant, drop="le")
        one = series.setdefault(tuple(sorted(labels.items())), {"buckets": [], "labels": labels})
        if sample.name.endswith("_bucket"):
            one["buckets"].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_sum"):
            one["sum"] = sample.value
        elif sample.name.endswith("_count"):
            one["count"] = sample.value
    return [
        metric_sample(
            family.name,
            "histogram",
            one.get("sum", 0.0),
            one["labels"],
            at,
            buckets=sorted(one["buckets"]),
            count=one.get("count", 0.0),
        )
        for one in series.values()
    ]
