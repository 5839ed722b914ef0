"""Check state per (service, instance, check), expiring after its TTL like Consul TTL checks.

A report sets a check's status until ``reported_at + ttl``; past that, with no new
report, the check turns to fail ("missing heartbeat"). A service's status is the worst
of its critical checks; non-critical failures only warn (``core.policy`` aggregates
per service with a policy).

Ownership: the health topic is keyed by service/instance, so each check belongs to one
Kafka partition, and the replica that owns that partition owns the check. ``OwnedChecks``
records each check's partition, drops a partition's checks when it is revoked, and
expires only what it holds. Expiry uses a heap of deadlines, so a poll with nothing due
costs nothing however many checks there are.

Deregistration, as Consul's ``deregister_critical_service_after``: a check whose TTL ran
out longer than ``deregister_after_s`` ago (no report since) is removed — from the owned checks,
from the fleet view, and later from the table — so instances that are gone for good
(scaled down, decommissioned) stop counting against their service and stop taking
storage. A check that reports again is registered again. A check that keeps reporting
``fail`` is alive and is never deregistered.
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from opsmesh.events.health import HealthReported, HealthStatus

CheckKey = tuple[str, str, str]  # service, instance, check

_RANK = {HealthStatus.PASS: 0, HealthStatus.WARN: 1, HealthStatus.FAIL: 2}


class ChangeCause(enum.StrEnum):
    REPORTED = "reported"
    TTL_EXPIRED = "ttl_expired"
    DEREGISTERED = "deregistered"  # silent past its TTL for deregister_after: removed


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


class OwnedChecks:
    def __init__(self) -> None:
        self._checks: dict[CheckKey, CheckState] = {}
        self._deadlines: list[tuple[float, CheckKey]] = []  # lazily pruned heap
        # Checks whose TTL ran out (or restored failing), by expiry: the candidates for
        # deregistration, so it never walks all owned checks. Lazily pruned like _deadlines.
        self._lapsed: list[tuple[float, CheckKey]] = []

    def __len__(self) -> int:
        return len(self._checks)

    def restore(self, states: Iterable[CheckState]) -> None:
        for state in states:
            self._checks[state.key] = state
            heapq.heappush(self._deadlines, (state.expires_at, state.key))
            if state.status is HealthStatus.FAIL:
                heapq.heappush(self._lapsed, (state.expires_at, state.key))

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

    def plan(self) -> ChecksPlan:
        """Changes to compute against the owned checks without touching them (``apply`` them)."""
        return ChecksPlan(self)

    def apply(self, plan: ChecksPlan) -> None:
        """Make a plan's states the owned checks' (once they are durable)."""
        if plan.owned is not self:
            raise ValueError("a plan applies to the owned checks it was made from")
        self._checks.update(plan.states)
        for key in plan.removed:
            self._checks.pop(key, None)
        lapsed = self._lapsed
        while lapsed and lapsed[0][0] < plan.deregistered_to:
            heapq.heappop(lapsed)  # read by the plan's deregister: removed, or stale
        for entry in plan.lapsed:
            # One its deregister read and kept was stale; one it removed is gone.
            if entry[0] >= plan.deregistered_to and entry[1] not in plan.removed:
                heapq.heappush(lapsed, entry)
        deadlines = self._deadlines
        # Every entry due by the plan's expiry was read by it: settled, or stale.
        while deadlines and deadlines[0][0] <= plan.expired_to:
            heapq.heappop(deadlines)
        for index, entry in enumerate(plan.deadlines):
            if index < plan.deadlines_read and entry[0] <= plan.expired_to:
                continue
            heapq.heappush(deadlines, entry)

    def observe(self, report: HealthReported, partition: int | None = None) -> StatusChange | None:
        """Observe one report and apply it at once (``plan`` for a batch)."""
        plan = self.plan()
        change = plan.observe(report, partition)
        self.apply(plan)
        return change

    def expire(self, now: float) -> list[StatusChange]:
        """Expire what is due and apply it at once (``plan`` for a batch)."""
        plan = self.plan()
        changes = plan.expire(now)
        self.apply(plan)
        return changes

    def deregister(self, now: float, after_s: float) -> list[StatusChange]:
        """Deregister what lapsed long enough ago and apply it at once."""
        plan = self.plan()
        changes = plan.deregister(now, after_s)
        self.apply(plan)
        return changes

    def due(self, now: float) -> list[tuple[float, CheckKey]]:
        """The deadlines due by ``now``, in order, read without popping them."""
        return _heap_until(self._deadlines, now, inclusive=True)

    def lapsed_before(self, cutoff: float) -> list[tuple[float, CheckKey]]:
        """Checks whose TTL ran out before ``cutoff`` (entries may be stale)."""
        return _heap_until(self._lapsed, cutoff, inclusive=False)

    def services(self) -> list[str]:
        return sorted({s.service for s in self._checks.values()})


def _heap_until(
    heap: list[tuple[float, CheckKey]], limit: float, *, inclusive: bool
) -> list[tuple[float, CheckKey]]:
    """A heap's entries up to ``limit``, in order, read without popping them: the
    subtrees whose root is past the limit hold nothing before it, so this costs what it
    finds."""
    found = []
    stack = [0] if heap else []
    while stack:
        index = stack.pop()
        if index >= len(heap):
            continue
        at = heap[index][0]
        if at > limit or (at == limit and not inclusive):
            continue
        found.append(heap[index])
        stack += (2 * index + 1, 2 * index + 2)
    found.sort()
    return found


class ChecksPlan:
    """One batch's changes, computed against the owned checks without changing them:
    plan → write → apply. A write that fails (PostgreSQL down) leaves the owned checks as
    they were, so the retry of the batch finds the same changes again instead of "no
    change" — and a record whose write fails for good can be set aside without its effects
    lingering in the owned checks. Reports first, then ``expire`` (once, last)."""

    def __init__(self, owned: OwnedChecks) -> None:
        self.owned = owned
        self.states: dict[CheckKey, CheckState] = {}  # new or refreshed: to store, then apply
        self.changes: list[StatusChange] = []
        self.deadlines: list[tuple[float, CheckKey]] = []  # to push on apply
        self.deadlines_read = 0  # how many of them ``expire`` read
        self.expired_to = -math.inf
        self.removed: dict[CheckKey, CheckState] = {}  # deregistered: to delete, then drop
        self.deregistered_to = -math.inf
        # Checks whose TTL ran out in this plan's expiry, turned to fail or failing
        # already (a check that last reported fail lapses without a change): to push on
        # the owned checks' lapsed heap on apply, and read by ``deregister``.
        self.lapsed: list[tuple[float, CheckKey]] = []

    def get(self, key: CheckKey) -> CheckState | None:
        if key in self.removed:
            return None
        state = self.states.get(key)
        return state if state is not None else self.owned.get(key)

    def deregister(self, now: float, after_s: float) -> list[StatusChange]:
        """Remove the checks whose TTL ran out more than ``after_s`` before ``now``. Call
        after ``expire``; reads only checks that lapsed, never all owned checks."""
        cutoff = now - after_s
        self.deregistered_to = max(self.deregistered_to, cutoff)
        lapsed = self.owned.lapsed_before(cutoff)
        lapsed.extend(entry for entry in self.lapsed if entry[0] < cutoff)
        changes = []
        for at, key in sorted(lapsed):
            state = self.get(key)
            if state is None or state.expires_at != at:
                continue  # reported since, or no longer held
            self.states.pop(key, None)
            self.removed[key] = state
            changes.append(StatusChange(state, state.status, ChangeCause.DEREGISTERED, now))
        self.changes.extend(changes)
        return changes

    def observe(self, report: HealthReported, partition: int | None = None) -> StatusChange | None:
        if self.deadlines_read:
            raise RuntimeError("reports are planned before expiry")
        key = (report.service, report.instance, report.check)
        previous = self.get(key)
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
        self.states[key] = state
        self.deadlines.append((state.expires_at, key))
        if previous is not None and previous.status is state.status:
            return None
        change = StatusChange(
            state, previous.status if previous else None, ChangeCause.REPORTED, report.reported_at
        )
        self.changes.append(change)
        return change

    def expire(self, now: float) -> list[StatusChange]:
        self.deadlines_read = len(self.deadlines)
        self.expired_to = max(self.expired_to, now)
        due = self.owned.due(now)
        due.extend(d for d in self.deadlines if d[0] <= now)
        due.sort()
        changes = []
        for at, key in due:
            state = self.get(key)
            if state is None or state.expires_at != at:
                continue  # refreshed since, or no longer held
            self.lapsed.append((at, key))
            if state.status is HealthStatus.FAIL:
                continue  # failing already: lapsed, but no change
            failed = replace(
                state,
                status=HealthStatus.FAIL,
                output=f"no report within its TTL (last at {state.reported_at:.0f})",
            )
            self.states[key] = failed
            changes.append(StatusChange(failed, state.status, ChangeCause.TTL_EXPIRED, now))
        self.changes.extend(changes)
        return changes
