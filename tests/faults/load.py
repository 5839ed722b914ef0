"""The steady alert load of a fault case and the sink it is judged by.

Four kinds of groups, each one alert that fires and then resolves:

- ``api``: Prometheus-style alerts posted to alert-engine's ``POST /api/v2/alerts``;
- ``metric``: samples on ``opsmesh.metrics`` over a threshold, then under it
  (metrics-ingest rolls them up into signals; a rule fires on them);
- ``health``: a failing check on ``opsmesh.health``, then a passing one
  (health-aggregator signals each change; a finding rule fires on the failure);
- ``query``: a p95 latency regression on ``opsmesh.slow-queries`` (query-analyzer's
  periodic analysis signals it while it lasts; a finding rule fires, and resolves once
  no signal came for its quiet period).

A group resolves only after its firing notification arrived: an alert that fires and
resolves within one ``group_wait`` is, by Alertmanager's semantics, never notified, and
an outage would otherwise make that race part of the count. Like Prometheus, the load
retries a post that the engine did not accept (5xx, timeout, refused connection) and
never re-posts one it accepted: an accepted alert must not be lost. A 4xx for a valid
alert is a bug and fails the case at once.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from opsmesh.events import HealthReported, HealthStatus, MetricSampled, SlowQueryObserved
from opsmesh.kafka import EventProducer, Outgoing
from opsmesh.labels import series_id
from opsmesh.topics import HEALTH, METRICS, SLOW_QUERIES
from tests.faults.accounting import ID_LABEL

METRIC = "fault_error_ratio"
HEALTH_CHECK = "fault_probe"

# The rules and routing the mesh runs with: every alert is a group of its own.
RULES = f"""
groups:
  - name: faults
    rules:
      - alert: FaultMetric
        signal: {METRIC}
        op: ">"
        threshold: 0.5
        by: [{ID_LABEL}]
      - alert: FaultHealth
        kind: finding
        signal: health_check_status
        matchers: {{check: {HEALTH_CHECK}}}
        op: ">"
        threshold: 1
        by: [service, instance, check]
        labels: {{{ID_LABEL}: "{{{{ labels.instance }}}}"}}
      # Longer than query-analyzer takes to come back (a SIGKILL, a PostgreSQL restart):
      # a shorter quiet period resolves the finding while its producer is away, and it
      # fires again after (observed with 3 s: a resolve and a second firing per group).
      - alert: FaultQueryRegression
        kind: finding
        signal: query_p95_regression
        quiet_for: 15s
        by: [database]
        labels: {{{ID_LABEL}: "{{{{ labels.database }}}}"}}
"""

AM_CONFIG = """
route:
  receiver: default
  group_by: ['...']
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: default
"""

_QUERY = "SELECT * FROM fault_orders WHERE customer_id = 42"
_QUERY_CALLS = 25  # above query-analyzer's 20 calls per side of a regression
# query-analyzer runs with 10 s windows and compares the last 5 closed ones with the 60
# before: slow calls 38 s old are in the compared range at once and for 2-12 s more;
# fast calls 100 s old are in the baseline for another 500 s.
_QUERY_NOW_AGE_S = 38.0
_QUERY_BASELINE_AGE_S = 100.0


class Kind(enum.StrEnum):
    API = "api"
    METRIC = "metric"
    HEALTH = "health"
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """Each kind's groups start evenly over ``span_s``, so every kind has groups that
    begin before, during and after a fault injected a few seconds in."""

    groups: dict[Kind, int]
    span_s: float = 9.0
    notify_timeout_s: float = 90.0  # for a firing notification, before resolving anyway
    accept_timeout_s: float = 90.0  # for the engine (or broker) to accept an alert

    def fault_ids(self, case: str) -> list[str]:
        return [fault_id(case, kind, i) for kind, n in self.groups.items() for i in range(n)]


def fault_id(case: str, kind: Kind, index: int) -> str:
    return f"{case}.{kind}.{index}"


def case_of(fault_id_: str) -> str:
    return fault_id_.split(".", 1)[0]


class SinkWatch:
    """Tails the sink's JSON-lines file from where it stood when the case began."""

    def __init__(self, file: Path) -> None:
        self._file = file
        self._offset = file.stat().st_size if file.exists() else 0
        self._partial = b""
        self.entries: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str]] = set()

    def poll(self) -> None:
        if not self._file.exists():
            return
        with self._file.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            entry = json.loads(line)
            self.entries.append(entry)
            payload = entry.get("payload") or {}
            labels = payload.get("commonLabels") or {}
            if ID_LABEL in labels:
                self._seen.add((labels[ID_LABEL], str(payload.get("status"))))

    def seen(self, fault_id_: str, status: str) -> bool:
        return (fault_id_, status) in self._seen

    async def wait(self, fault_id_: str, status: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.seen(fault_id_, status):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)  # polling interval of a condition wait
            self.poll()
        return True

    def count_seen(self, pairs: Iterable[tuple[str, str]]) -> int:
        self.poll()
        return sum(1 for pair in pairs if pair in self._seen)


@dataclass
class LoadStats:
    posts: int = 0
    post_failures: Counter[str] = field(default_factory=Counter)  # why a post was not accepted
    publish_failures: Counter[str] = field(default_factory=Counter)
    not_notified_before_resolve: list[str] = field(default_factory=list)

    def failures(self) -> str:
        parts = [f"{k} x{n}" for k, n in sorted(self.post_failures.items())]
        parts += [f"kafka {k} x{n}" for k, n in sorted(self.publish_failures.items())]
        return ", ".join(parts) or "-"


class AlertRejected(AssertionError):
    """alert-engine answered a valid alert with a 4xx."""


class LoadDriver:
    def __init__(
        self,
        *,
        case: str,
        plan: LoadPlan,
        engine_url: str,
        token: str,
        bootstrap: str,
        sink: SinkWatch,
    ) -> None:
        self.case = case
        self.plan = plan
        self._engine_url = engine_url
        self._token = token
        self._bootstrap = bootstrap
        self.sink = sink
        self.stats = LoadStats()
        self._producer: EventProducer | None = None
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        self._producer = EventProducer(
            {"bootstrap_servers": self._bootstrap}, source="/tests/faults"
        )
        await self._producer.start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            runs = {
                Kind.API: self._api_group,
                Kind.METRIC: self._metric_group,
                Kind.HEALTH: self._health_group,
                Kind.QUERY: self._query_group,
            }
            await asyncio.gather(
                *(
                    self._later(i * self.plan.span_s / n, runs[kind](fault_id(self.case, kind, i)))
                    for kind, n in self.plan.groups.items()
                    for i in range(n)
                )
            )
        finally:
            await self._session.close()
            await self._producer.stop()

    @staticmethod
    async def _later(delay_s: float, work: Any) -> None:
        await asyncio.sleep(delay_s)  # the load's schedule: groups start one after another
        await work

    async def _fired_then(self, fid: str) -> None:
        if not await self.sink.wait(fid, "firing", self.plan.notify_timeout_s):
            self.stats.not_notified_before_resolve.append(fid)

    # -- the four kinds --------------------------------------------------------------

    async def _api_group(self, fid: str) -> None:
        labels = {"alertname": "FaultApi", ID_LABEL: fid, "severity": "page"}
        starts = _iso(time.time())
        await self._post([{"labels": labels, "startsAt": starts}])
        await self._fired_then(fid)
        await self._post([{"labels": labels, "startsAt": starts, "endsAt": _iso(time.time())}])

    async def _metric_group(self, fid: str) -> None:
        labels = {ID_LABEL: fid}
        await self._samples(labels, 0.9)
        await self._fired_then(fid)
        await self._samples(labels, 0.1)

    async def _samples(self, labels: dict[str, str], value: float) -> None:
        """Samples for 1.5 s: a few one-second windows over (or under) the threshold."""
        key = series_id(METRIC, labels)
        for _ in range(8):
            sample = MetricSampled(name=METRIC, value=value, labels=labels, sampled_at=time.time())
            await self._publish([Outgoing(METRICS, key, sample)])
            await asyncio.sleep(0.2)  # the series' sampling interval

    async def _health_group(self, fid: str) -> None:
        await self._reports(fid, HealthStatus.FAIL)
        await self._fired_then(fid)
        await self._reports(fid, HealthStatus.PASS)

    async def _reports(self, fid: str, status: HealthStatus) -> None:
        for _ in range(3):
            report = HealthReported(
                service="faults",
                instance=fid,
                check=HEALTH_CHECK,
                status=status,
                ttl_s=600,
                reported_at=time.time(),
            )
            await self._publish([Outgoing(HEALTH, f"faults/{fid}", report)])
            await asyncio.sleep(0.3)  # the check's reporting interval

    async def _query_group(self, fid: str) -> None:
        """A regression that lasts until it is notified: slow calls, back-dated into the
        analysed windows, keep coming until the firing notification arrives; then they
        stop, the regression leaves the analysed range and the finding goes quiet.

        Fast calls come with them, back-dated into the baseline, forty to one: slow calls
        that age into the baseline (a long outage) must not become the new normal, as they
        would for a real regression that lasts longer than the compared range."""

        def calls(age_s: float, duration_ms: float, count: int) -> list[Outgoing]:
            now = time.time()
            return [
                Outgoing(
                    SLOW_QUERIES,
                    fid,
                    SlowQueryObserved(
                        sql=_QUERY,
                        duration_ms=duration_ms,
                        database=fid,
                        application="faults",
                        started_at=now - age_s + 0.001 * k,
                    ),
                )
                for k in range(count)
            ]

        await self._publish(calls(_QUERY_BASELINE_AGE_S, 5.0, 200))
        slow = _QUERY_CALLS  # enough for one analysis at once, a trickle after
        deadline = time.monotonic() + self.plan.notify_timeout_s
        while True:
            await self._publish(
                calls(_QUERY_NOW_AGE_S, 120.0, slow) + calls(_QUERY_BASELINE_AGE_S, 5.0, 200)
            )
            slow = 5
            if await self.sink.wait(fid, "firing", 1.0):
                return
            if time.monotonic() > deadline:
                self.stats.not_notified_before_resolve.append(fid)
                return

    # -- delivery with retries -----------------------------------------------------------

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        assert self._session is not None
        body = json.dumps(alerts).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"}
        deadline = time.monotonic() + self.plan.accept_timeout_s
        delay = 0.1
        while True:
            self.stats.posts += 1
            try:
                async with self._session.post(
                    f"{self._engine_url}/api/v2/alerts", data=body, headers=headers
                ) as response:
                    text = await response.text()
                    if response.status == 200:
                        return
                    if 400 <= response.status < 500:
                        raise AlertRejected(f"{response.status} for a valid alert: {text[:300]}")
                    reason = f"http {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            self.stats.post_failures[reason] += 1
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"alert-engine did not accept an alert for {self.plan.accept_timeout_s}s;"
                    f" failures: {self.stats.failures()}"
                )
            await asyncio.sleep(delay)  # retry backoff, as Prometheus' notifier does
            delay = min(delay * 2, 2.0)

    async def _publish(self, items: list[Outgoing]) -> None:
        assert self._producer is not None
        deadline = time.monotonic() + self.plan.accept_timeout_s
        while True:
            try:
                await self._producer.publish_many(items)
                return
            except Exception as exc:  # the broker is down: an app's producer retries too
                self.stats.publish_failures[type(exc).__name__] += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)  # retry backoff


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
