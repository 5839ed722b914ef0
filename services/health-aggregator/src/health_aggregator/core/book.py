"""Check state per (service, instance, check), expiring after its TTL like Consul TTL checks.

A report sets a check's status until ``reported_at + ttl``; past that, with no new
report, the check turns to fail ("missing heartbeat"). A service's status is the worst
of its critical checks; non-critical failures only warn.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from opsmesh.events.health import HealthReported, HealthStatus

CheckKey = tuple[str, str, str]  # service, instance, check

_RANK = {HealthStatus.PASS: 0, HealthStatus.WARN: 1, HealthStatus.FAIL: 2}


class ChangeCause(enum.StrEnum):
    REPORTED = "reported"
    TTL_EXPIRED = "ttl_expired"


@dataclass(frozen=True, slots=True)
class CheckState:
    service: str
    instance: str
    check: str
    status: HealthStatus
    critical: bool
    output: str | None
    reported_at: float
    expires_at: float

    @property
    def key(self) -> CheckKey:
        return (self.service, self.instance, self.check)


@dataclass(frozen=True, slots=True)
class StatusChange:
    state: CheckState
    previous: HealthStatus | None
    cause: ChangeCause
    at: float


def worst(statuses: Iterable[HealthStatus]) -> HealthStatus:
    result = HealthStatus.PASS
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


class HealthBook:
    def __init__(self) -> None:
        self._checks: dict[CheckKey, CheckState] = {}

    def restore(self, states: Iterable[CheckState]) -> None:
        for state in states:
            self._checks[state.key] = state

    def checks(self) -> list[CheckState]:
        return list(self._checks.values())

    def get(self, key: CheckKey) -> CheckState | None:
        return self._checks.get(key)

    def observe(self, report: HealthReported) -> StatusChange | None:
        key = (report.service, report.instance, report.check)
        previous = self._checks.get(key)
        if previous is not None and report.reported_at < previous.reported_at:
            return None  # an older report arriving late never overrides a newer one
        state = CheckState(
            service=report.service,
            instance=report.instance,
            check=report.check,
            status=report.status,
            critical=report.critical,
            output=report.output,
            reported_at=report.reported_at,
            expires_at=report.reported_at + report.ttl_s,
        )
        self._checks[key] = state
        if previous is not None and previous.status is state.status:
            return None
        return StatusChange(
            state, previous.status if previous else None, ChangeCause.REPORTED, report.reported_at
        )

    def expire(self, now: float) -> list[StatusChange]:
        changes = []
        for key, state in self._checks.items():
            if state.expires_at <= now and state.status is not HealthStatus.FAIL:
                failed = replace(
                    state,
                    status=HealthStatus.FAIL,
                    output=f"no report within its TTL (last at {state.reported_at:.0f})",
                )
                self._checks[key] = failed
                changes.append(StatusChange(failed, state.status, ChangeCause.TTL_EXPIRED, now))
        return changes

    def service_status(self, service: str) -> HealthStatus:
        statuses = []
        for state in self._checks.values():
            if state.service != service:
                continue
            if state.critical or state.status is not HealthStatus.FAIL:
                statuses.append(state.status)
            else:
                statuses.append(HealthStatus.WARN)
        return worst(statuses)

    def services(self) -> list[str]:
        return sorted({s.service for s in self._checks.values()})
