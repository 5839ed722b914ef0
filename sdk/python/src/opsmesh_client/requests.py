"""Request metrics under the names and labels the mesh's built-in alert rules read.

``http_request_duration_seconds`` (a histogram by route: HighLatencyP95 reads its p95) and
``http_error_ratio`` (a gauge: the share of the interval's requests that failed, 5xx or an
exception; HighErrorRate compares it with 5 %), plus ``http_requests_total`` by route and
status class for dashboards. The names are the mesh's catalogue's (``opsmesh.catalogue``);
a contract test there keeps these in step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from opsmesh_client.metrics import CounterSeries, HistogramSeries, Registry
from opsmesh_client.wire import Record, metric_sample

REQUEST_DURATION = "http_request_duration_seconds"
ERROR_RATIO = "http_error_ratio"
REQUESTS_TOTAL = "http_requests_total"
UNMATCHED_ROUTE = "<unmatched>"  # a request no route matched (a 404): one series, not one per path


class RequestMetrics:
    def __init__(
        self, registry: Registry, *, service: str, instance: str, environment: str
    ) -> None:
        self._duration = registry.histogram(REQUEST_DURATION, ["route"])
        self._total = registry.counter(REQUESTS_TOTAL, ["route", "method", "status_class"])
        self._environment = environment
        self._lock = threading.Lock()
        self._requests = 0
        self._failed = 0
        self._service = service
        self._instance = instance
        # The series of each (route, method, status class) seen, found by one lookup per
        # request instead of two label resolutions: as many entries as series.
        self._series: dict[tuple[str, str, int], tuple[HistogramSeries, CounterSeries]] = {}
        registry.add_collector(self._error_ratio)

    def observe(self, route: str | None, method: str, status: int, duration_s: float) -> None:
        """One finished request; ``status`` 500 for one that raised."""
        route = route or UNMATCHED_ROUTE
        key = (route, method, status // 100)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self._duration.labels(route=route),
                self._total.labels(route=route, method=method, status_class=f"{key[2]}xx"),
            )
        series[0].observe(max(0.0, duration_s))
        series[1].inc()
        with self._lock:
            self._requests += 1
            if status >= 500:
                self._failed += 1

    def _error_ratio(self, at: float) -> Iterable[Record]:
        """The ratio over the requests since the last collection; nothing when none came
        (no requests is not a 0 % error rate, and an absence rule can tell)."""
        with self._lock:
            requests, failed = self._requests, self._failed
            self._requests = self._failed = 0
        if not requests:
            return ()
        labels = {"service": self._service, "instance": self._instance, "env": self._environment}
        return (metric_sample(ERROR_RATIO, "gauge", failed / requests, labels, at),)
