"""Where an alert's time goes between ``POST /api/v2/alerts`` and the page (issue 12).

One histogram, ``opsmesh_alert_path_seconds{hop}``, that alert-engine and the notifier
both expose for the hops they run, so a dashboard (or ``bench/alert_engine_vs_alertmanager``)
sees which queue holds a page during an alert storm:

=============  ============  ===============================================================
hop            service       from → to (one observation per)
=============  ============  ===============================================================
``ingest``     alert-engine  POST merged → its routed records acknowledged by Kafka (POST)
``persist``    alert-engine  routed record's Kafka timestamp → persisted by the group's
                             owner and applied to its groups (consumed record)
``flush``      alert-engine  alerts applied to a group → the flush that sends them planned
                             (group notified; includes ``group_wait``)
``produce``    alert-engine  flush planned → its notification request acknowledged by Kafka
                             (group notified; includes the flush's rate-limit call)
``claim``      notifier      request's Kafka timestamp → claimed in the delivery log
                             (request)
``delivery``   notifier      claimed → the integration answered 2xx (delivery)
=============  ============  ===============================================================

The hops across Kafka start from the record's timestamp (the producer's CreateTime, taken
as the record is handed to the client), so they compare two hosts' wall clocks; the
others are one process's clock.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Histogram

NAME = "opsmesh_alert_path_seconds"

# Fine where the bar is (p50 under 150 ms), coarse up to a stalled minute.
BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class Hop(enum.StrEnum):
    INGEST = "ingest"
    PERSIST = "persist"
    FLUSH = "flush"
    PRODUCE = "produce"
    CLAIM = "claim"
    DELIVERY = "delivery"


class AlertPathMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._seconds = Histogram(
            NAME,
            "Time an alert spends in each hop between POST and delivery",
            ["hop"],
            registry=registry,
            buckets=BUCKETS,
        )

    def observe(self, hop: Hop, seconds: float, times: int = 1) -> None:
        """``seconds`` clamped at 0 (two hosts' clocks); ``times`` observations of it."""
        child = self._seconds.labels(hop.value)
        for _ in range(times):
            child.observe(max(0.0, seconds))


# -- reading it back (the benchmark, from two scrapes of /metrics) --------------------


def buckets_by_hop(exposition: str) -> dict[str, dict[float, float]]:
    """The cumulative bucket counts of ``opsmesh_alert_path_seconds`` per hop, from a
    Prometheus text exposition."""
    out: dict[str, dict[float, float]] = {}
    prefix = NAME + "_bucket{"
    for line in exposition.splitlines():
        if not line.startswith(prefix):
            continue
        labels, _, value = line[len(prefix) :].partition("} ")
        fields = dict(part.split("=", 1) for part in labels.split(",") if "=" in part)
        hop = fields.get("hop", "").strip('"')
        le = fields.get("le", "").strip('"')
        upper = float("inf") if le == "+Inf" else float(le)
        out.setdefault(hop, {})[upper] = float(value)
    return out


def difference(
    after: Mapping[str, Mapping[float, float]], before: Mapping[str, Mapping[float, float]]
) -> dict[str, dict[float, float]]:
    """The observations between two scrapes (a hop absent before counts from zero)."""
    return {
        hop: {le: n - before.get(hop, {}).get(le, 0.0) for le, n in counts.items()}
        for hop, counts in after.items()
    }


def quantile(cumulative: Mapping[float, float], q: float) -> float | None:
    """``q`` (0..1) of a histogram's cumulative buckets, interpolated linearly inside its
    bucket as Prometheus' ``histogram_quantile`` does; None without observations. In the
    +Inf bucket it answers the highest finite bound."""
    bounds: Iterable[float] = sorted(cumulative)
    pairs = [(le, cumulative[le]) for le in bounds]
    if not pairs or pairs[-1][1] <= 0:
        return None
    rank = q * pairs[-1][1]
    lower, below = 0.0, 0.0
    for le, count in pairs:
        if count >= rank and count > below:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower
