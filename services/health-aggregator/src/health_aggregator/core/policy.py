"""Per-service aggregation with a policy, and the overall status.

An instance's status is the worst of its critical checks; a failing non-critical check
makes it warn at most. A service's status follows its policy over its instances:

- ``all``: every instance must be healthy (pass or warn); any failing instance fails it.
- ``quorum``: a strict majority of instances must be healthy.
- ``any``: one healthy instance is enough.

Within a met policy, any instance not passing makes the service warn. The overall
status is the worst service status (fail > warn > pass, Spring Boot's order with DOWN
first); with no services it is pass. Every result carries a named reason.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from health_aggregator.core.checks import CheckState, worst
from opsmesh.events.health import HealthStatus


class Policy(enum.StrEnum):
    ALL = "all"
    QUORUM = "quorum"
    ANY = "any"


class Reason(enum.StrEnum):
    ALL_PASSING = "all_passing"
    DEGRADED = "degraded"  # policy met, but something warns or a non-critical check fails
    POLICY_NOT_MET = "policy_not_met"
    NO_INSTANCES = "no_instances"


@dataclass(frozen=True, slots=True)
class InstanceHealth:
    instance: str
    status: HealthStatus
    checks: tuple[CheckState, ...]


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    service: str
    status: HealthStatus
    policy: Policy
    reason: Reason
    healthy: int  # instances passing or warning
    total: int
    instances: tuple[InstanceHealth, ...]

    @property
    def output(self) -> str:
        return (
            f"{self.healthy}/{self.total} instances healthy; policy {self.policy.value}: "
            f"{self.reason.value}"
        )


def instance_status(checks: Iterable[CheckState]) -> HealthStatus:
    statuses = []
    for check in checks:
        if check.critical or check.status is not HealthStatus.FAIL:
            statuses.append(check.status)
        else:
            statuses.append(HealthStatus.WARN)
    return worst(statuses)


def service_health(service: str, checks: Iterable[CheckState], policy: Policy) -> ServiceHealth:
    by_instance: dict[str, list[CheckState]] = {}
    for check in checks:
        by_instance.setdefault(check.instance, []).append(check)
    instances = tuple(
        InstanceHealth(name, instance_status(cs), tuple(sorted(cs, key=lambda c: c.check)))
        for name, cs in sorted(by_instance.items())
    )
    total = len(instances)
    healthy = sum(1 for i in instances if i.status is not HealthStatus.FAIL)
    if total == 0:
        return ServiceHealth(service, HealthStatus.PASS, policy, Reason.NO_INSTANCES, 0, 0, ())
    if policy is Policy.ALL:
        met = healthy == total
    elif policy is Policy.QUORUM:
        met = healthy * 2 > total
    else:
        met = healthy >= 1
    if not met:
        status, reason = HealthStatus.FAIL, Reason.POLICY_NOT_MET
    elif all(i.status is HealthStatus.PASS for i in instances):
        status, reason = HealthStatus.PASS, Reason.ALL_PASSING
    else:
        status, reason = HealthStatus.WARN, Reason.DEGRADED
    return ServiceHealth(service, status, policy, reason, healthy, total, instances)


def aggregate(
    checks: Iterable[CheckState], policies: Mapping[str, Policy], default: Policy = Policy.ALL
) -> list[ServiceHealth]:
    by_service: dict[str, list[CheckState]] = {}
    for check in checks:
        by_service.setdefault(check.service, []).append(check)
    return [
        service_health(name, cs, policies.get(name, default))
        for name, cs in sorted(by_service.items())
    ]


def overall(services: Iterable[ServiceHealth]) -> HealthStatus:
    return worst(s.status for s in services)
