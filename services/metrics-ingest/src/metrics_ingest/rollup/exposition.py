"""The latest application samples in the Prometheus text exposition format (0.0.4).

One family per metric name (``# TYPE``), the newest sample per series; histograms as
``_bucket{le=...}`` (``+Inf`` = count), ``_sum`` and ``_count``. No timestamps, as the
format recommends for values a scraper should treat as current.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from opsmesh.events.metrics import MetricKind, MetricSampledFields

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(samples: Iterable[MetricSampledFields]) -> str:
    by_name: dict[str, list[MetricSampledFields]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    lines: list[str] = []
    for name in sorted(by_name):
        family = sorted(by_name[name], key=lambda s: sorted(s.labels.items()))
        kind = family[-1].kind
        lines.append(f"# TYPE {name} {kind.value}")
        for sample in family:
            if sample.kind is not kind:
                continue  # one type per family; a series that changed type waits its turn
            if kind is MetricKind.HISTOGRAM:
                lines.extend(_histogram(sample))
            else:
                lines.append(f"{name}{_labels(sample.labels)} {_number(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def _histogram(sample: MetricSampledFields) -> list[str]:
    out = []
    count = sample.count if sample.count is not None else 0.0
    for bucket in sample.buckets or []:
        if math.isinf(bucket.le):
            continue  # the +Inf bucket is the count, written once below
        labels = {**sample.labels, "le": _number(bucket.le)}
        out.append(f"{sample.name}_bucket{_labels(labels)} {_number(bucket.count)}")
    out.append(f"{sample.name}_bucket{_labels({**sample.labels, 'le': '+Inf'})} {_number(count)}")
    out.append(f"{sample.name}_sum{_labels(sample.labels)} {_number(sample.value)}")
    out.append(f"{sample.name}_count{_labels(sample.labels)} {_number(count)}")
    return out


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(labels[k])}"' for k in sorted(labels))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))
