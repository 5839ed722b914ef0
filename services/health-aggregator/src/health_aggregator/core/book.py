"""Check state per (service, instance, check), expiring after its TTL like Consul TTL checks.

A report sets a check's status until ``reported_at + ttl``; past that, with no new
report, the check turns to fail ("missing heartbeat"). A service's status is the worst
of its critical checks; non-critical failures only warn (``core.policy`` aggregates
per service with a policy).

Ownership: the health topic is keyed by service/instance, so each check belongs to one
Kafka partition, and the replica that owns that partition owns the check. The book
records each check's partition, drops a partition's checks when it is revoked, and
expires only what it holds. Expiry uses a heap of deadlines, so a poll with nothing due
costs nothing however many checks there are.
"""

from __future__ import annotations

import enum
import heapq
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
    partition: int | None = None  # the health-topic partition it arrived on

    @property
    def key(self) -> CheckKey:
        return (self.service, self.instance, self.check)


@dataclass(frozen=True, slots=True)
class StatusChange:
    state: CheckState
    previous: HealthStatus | None
    cause: ChangeCause
    at: float


def too_far_ahead(report: HealthReported, now: float, max_future_s: float) -> str | None:
    """Why a report stamped further ahead than ``max_future_s`` of ``now`` is refused, or
    None. Accepted, a year-9999 report would never expire, and since an older report never
    overrides a newer one, every genuine report after it would be ignored for good."""
    if report.reported_at > now + max_future_s:
        return (
            f"reported_at {report.reported_at} is more than {max_future_s:g}s ahead of "
            f"this consumer's clock ({now:.0f})"
        )
    return None


def worst(statuses: Iterable[HealthStatus]) -> HealthStatus:
    result = HealthStatus.PASS
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


class HealthBook:
    def __init__(self) -> None:
        self._checks: dict[CheckKey, CheckState] = {}
        self._deadlines: list[tuple[float, CheckKey]] = []  # lazily pruned heap

    def __len__(self) -> int:
        return len(self._checks)

    def restore(self, states: Iterable[CheckState]) -> None:
        for state in states:
            self._checks[state.key] = state
            heapq.heappush(self._deadlines, (state.expires_at, state.key))

    def drop_partitions(self, partitions: Iterable[int]) -> list[CheckState]:
        """Forget the checks of partitions this replica no longer owns."""
        lost = set(partitions)
        dropped = [s for s in self._checks.values() if s.partition in lost]
        for state in dropped:
            del self._checks[state.key]
        return dropped

    def checks(self) -> list[CheckState]:
        return list(self._checks.values())

    def get(self, key: CheckKey) -> CheckState | None:
        return self._checks.get(key)

    def observe(self, report: HealthReported, partition: int | None = None) -> StatusChange | None:
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
            partition=partition
            if partition is not None or previous is None
            else previous.partition,
        )
        self._checks[key] = state
        heapq.heappush(self._deadlines, (state.expires_at, key))
        if previous is not None and previous.status is state.status:
            return None
        return StatusChange(
            state, previous.status if previous else None, ChangeCause.REPORTED, report.reported_at
        )

    def expire(self, now: float) -> list[StatusChange]:
        changes = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            due, key = heapq.heappop(deadlines)
            state = self._checks.get(key)
            if state is None or state.expires_at != due:
                continue  # refreshed since, or no longer held
            if state.status is HealthStatus.FAIL:
                continue
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
