"""Active probes: their specification, how a result becomes a status, and when to run.

A probe's result is a ``HealthReported`` like any other report, with a TTL of three
intervals by default, so a probe that stops running shows as failed (Consul TTL).

``body_regex`` is searched with RE2 (Go's syntax, as blackbox_exporter's
``fail_if_body_not_matches_regexp``): linear in the body's length whatever the pattern,
since the body comes from the target; ``$`` is the end of the body, not of a line
(``(?m)`` for lines).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec
import re2

from opsmesh.events.health import HealthReported, HealthStatus, ReportKind


class ProbeKind(enum.StrEnum):
    HTTP = "http"  # http:// and https://
    TCP = "tcp"  # host:port
    POSTGRES = "postgres"  # a libpq DSN
    REDIS = "redis"  # redis://
    KAFKA = "kafka"  # bootstrap host:port[,host:port]
    DISK = "disk"  # a path on this host


class ProbeSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    service: str
    check: str
    kind: ProbeKind
    target: str
    instance: str = "probe"
    interval_s: float = 10.0
    timeout_s: float = 2.0
    ttl_s: float | None = None  # default: three intervals
    critical: bool = True
    # HTTP
    expect_status: tuple[int, int] = (200, 399)
    body_contains: str | None = None
    body_regex: str | None = None
    latency_warn_ms: float | None = None
    cert_warn_days: float = 14.0
    ca_file: str | None = None
    # disk
    warn_free_pct: float = 10.0
    fail_free_pct: float = 5.0

    @property
    def ttl(self) -> float:
        return self.ttl_s if self.ttl_s is not None else 3 * self.interval_s


class Why(enum.StrEnum):
    OK = "ok"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    UNEXPECTED_STATUS = "unexpected_status"
    BODY_MISMATCH = "body_mismatch"
    SLOW = "slow"
    CERT_EXPIRING = "cert_expiring"
    CERT_EXPIRED = "cert_expired"
    DISK_LOW = "disk_low"
    DISK_CRITICAL = "disk_critical"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: HealthStatus
    why: Why
    output: str
    observed: float | None = None


def parse_specs(raw: Any) -> list[ProbeSpec]:
    """From the probes file's content (a list of mappings); raises ValueError with the
    entry's index on a bad one."""
    if not isinstance(raw, list):
        raise ValueError("the probes file must hold a list of probes")
    specs = []
    for index, item in enumerate(raw):
        try:
            spec = msgspec.convert(item, ProbeSpec)
        except msgspec.ValidationError as exc:
            raise ValueError(f"probe #{index}: {exc}") from None
        if spec.interval_s <= 0 or spec.timeout_s <= 0:
            raise ValueError(f"probe #{index}: interval_s and timeout_s must be positive")
        if spec.body_regex is not None:
            try:
                body_pattern(spec.body_regex)
            except re2.error as exc:
                raise ValueError(f"probe #{index}: body_regex: {_error_text(exc)}") from None
        specs.append(spec)
    return specs


@lru_cache(maxsize=256)
def body_pattern(pattern: str) -> re2._Regexp[str]:
    options = re2.Options()
    options.log_errors = False  # raised, not written to stderr
    options.max_mem = 1 << 20
    return re2.compile(pattern, options)


def _error_text(exc: re2.error) -> str:
    raw = exc.args[0] if exc.args else ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def failed(error: str, *, timed_out: bool = False) -> Outcome:
    why = Why.TIMEOUT if timed_out else Why.UNREACHABLE
    return Outcome(HealthStatus.FAIL, why, error[:500])


def connected(spec: ProbeSpec, latency_ms: float) -> Outcome:
    if spec.latency_warn_ms is not None and latency_ms > spec.latency_warn_ms:
        return Outcome(
            HealthStatus.WARN,
            Why.SLOW,
            f"answered in {latency_ms:.0f} ms > {spec.latency_warn_ms:g} ms",
            latency_ms,
        )
    return Outcome(HealthStatus.PASS, Why.OK, f"answered in {latency_ms:.0f} ms", latency_ms)


def http_outcome(
    spec: ProbeSpec,
    *,
    status_code: int,
    latency_ms: float,
    body: str,
    cert_days: float | None,
) -> Outcome:
    low, high = spec.expect_status
    if not low <= status_code <= high:
        return Outcome(
            HealthStatus.FAIL,
            Why.UNEXPECTED_STATUS,
            f"HTTP {status_code}, expected {low}-{high}",
            latency_ms,
        )
    if spec.body_contains is not None and spec.body_contains not in body:
        return Outcome(
            HealthStatus.FAIL,
            Why.BODY_MISMATCH,
            f"body does not contain {spec.body_contains!r}",
            latency_ms,
        )
    if spec.body_regex is not None and body_pattern(spec.body_regex).search(body) is None:
        return Outcome(
            HealthStatus.FAIL, Why.BODY_MISMATCH, f"body does not match {spec.body_regex!r}"
        )
    if cert_days is not None:
        if cert_days <= 0:
            return Outcome(HealthStatus.FAIL, Why.CERT_EXPIRED, "certificate expired", cert_days)
        if cert_days < spec.cert_warn_days:
            return Outcome(
                HealthStatus.WARN,
                Why.CERT_EXPIRING,
                f"certificate expires in {cert_days:.1f} days",
                cert_days,
            )
    outcome = connected(spec, latency_ms)
    if cert_days is not None and outcome.status is HealthStatus.PASS:
        return Outcome(
            outcome.status,
            outcome.why,
            f"HTTP {status_code} in {latency_ms:.0f} ms; certificate valid {cert_days:.0f} days",
            latency_ms,
        )
    return outcome


def disk_outcome(spec: ProbeSpec, free_pct: float) -> Outcome:
    text = f"{free_pct:.1f}% free"
    if free_pct < spec.fail_free_pct:
        return Outcome(HealthStatus.FAIL, Why.DISK_CRITICAL, text, free_pct)
    if free_pct < spec.warn_free_pct:
        return Outcome(HealthStatus.WARN, Why.DISK_LOW, text, free_pct)
    return Outcome(HealthStatus.PASS, Why.OK, text, free_pct)


def next_delay(interval_s: float, jitter: float, draw: float) -> float:
    """The wait before the next run: the interval ± ``jitter`` of it (``draw`` in [0, 1)),
    so probes of many targets do not fire in lockstep."""
    return interval_s * (1.0 + jitter * (2.0 * draw - 1.0))


def to_report(spec: ProbeSpec, outcome: Outcome, now: float) -> HealthReported:
    return HealthReported(
        service=spec.service,
        instance=spec.instance,
        check=spec.check,
        kind=ReportKind.CHECK,
        status=outcome.status,
        observed_value=outcome.observed,
        output=f"{spec.kind.value} {outcome.why.value}: {outcome.output}"[:16_000],
        critical=spec.critical,
        ttl_s=spec.ttl,
        reported_at=now,
    )
