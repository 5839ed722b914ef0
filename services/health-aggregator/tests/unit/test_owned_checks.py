"""OwnedChecks: status changes, stale reports, TTL expiry and per-service roll-up."""

from __future__ import annotations

import pytest

from health_aggregator.core.checks import ChangeCause, CheckState, OwnedChecks, too_far_ahead, worst
from health_aggregator.core.policy import Policy, service_health
from opsmesh.events.health import HealthReported, HealthStatus

T0 = 1_700_000_000.0
PASS, WARN, FAIL = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL


def service_status(owned: OwnedChecks, service: str) -> HealthStatus:
    """The service's status from the owned checks' checks, as the API and the view work it out
    under the default policy (``all``: every instance healthy)."""
    checks = [c for c in owned.checks() if c.service == service]
    return service_health(service, checks, Policy.ALL).status


def report(
    status: HealthStatus,
    at: float = T0,
    *,
    service: str = "api",
    instance: str = "i-1",
    check: str = "db",
    critical: bool = True,
    ttl: float = 30.0,
    output: str | None = None,
) -> HealthReported:
    return HealthReported(
        service=service,
        instance=instance,
        check=check,
        status=status,
        critical=critical,
        ttl_s=ttl,
        reported_at=at,
        output=output,
    )


def test_first_report_is_a_change_from_nothing() -> None:
    owned = OwnedChecks()
    change = owned.observe(report(PASS, output="ok"))
    assert change is not None
    assert (change.previous, change.cause, change.at) == (None, ChangeCause.REPORTED, T0)
    assert change.state == CheckState("api", "i-1", "db", PASS, True, "ok", T0, T0 + 30)
    assert owned.get(("api", "i-1", "db")) == change.state


def test_same_status_is_not_a_change_but_refreshes_the_ttl() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS))
    assert owned.observe(report(PASS, T0 + 20)) is None
    state = owned.get(("api", "i-1", "db"))
    assert state is not None
    assert state.expires_at == T0 + 50
    assert owned.expire(T0 + 49) == []


def test_status_change_is_reported_with_previous() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS))
    change = owned.observe(report(FAIL, T0 + 10))
    assert change is not None
    assert (change.previous, change.state.status, change.at) == (PASS, FAIL, T0 + 10)
    back = owned.observe(report(PASS, T0 + 20))
    assert back is not None
    assert (back.previous, back.state.status) == (FAIL, PASS)


def test_older_report_is_ignored() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS, T0 + 10))
    assert owned.observe(report(FAIL, T0 + 5)) is None
    state = owned.get(("api", "i-1", "db"))
    assert state is not None
    assert (state.status, state.reported_at) == (PASS, T0 + 10)


def test_checks_are_keyed_by_service_instance_and_check() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS))
    assert owned.observe(report(PASS, instance="i-2")) is not None
    assert owned.observe(report(PASS, check="cache")) is not None
    assert owned.observe(report(PASS, service="web")) is not None
    assert len(owned.checks()) == 4
    assert owned.services() == ["api", "web"]


def test_ttl_expiry_fails_the_check_exactly_at_reported_at_plus_ttl() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS, ttl=30))
    assert owned.expire(T0 + 29.999) == []
    (change,) = owned.expire(T0 + 30)
    assert change.cause is ChangeCause.TTL_EXPIRED
    assert (change.previous, change.state.status, change.at) == (PASS, FAIL, T0 + 30)
    assert change.state.output is not None
    assert "TTL" in change.state.output
    assert service_status(owned, "api") is FAIL


def test_ttl_expiry_is_reported_once() -> None:
    owned = OwnedChecks()
    owned.observe(report(WARN, ttl=10))
    assert len(owned.expire(T0 + 10)) == 1
    assert owned.expire(T0 + 11) == []
    assert owned.expire(T0 + 1000) == []


def test_a_failing_check_expiring_is_not_a_change() -> None:
    owned = OwnedChecks()
    owned.observe(report(FAIL, ttl=10))
    assert owned.expire(T0 + 10) == []


def test_a_new_report_after_expiry_recovers() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS, ttl=10))
    owned.expire(T0 + 10)
    change = owned.observe(report(PASS, T0 + 15, ttl=10))
    assert change is not None
    assert change.cause is ChangeCause.REPORTED
    assert (change.previous, change.state.status) == (FAIL, PASS)
    assert owned.expire(T0 + 24) == []
    assert len(owned.expire(T0 + 25)) == 1


def test_only_the_stale_checks_expire() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS, check="slow", ttl=60))
    owned.observe(report(PASS, check="fast", ttl=5))
    (change,) = owned.expire(T0 + 5)
    assert change.state.check == "fast"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], PASS),
        ([PASS, PASS], PASS),
        ([PASS, WARN], WARN),
        ([WARN, FAIL, PASS], FAIL),
        ([FAIL], FAIL),
    ],
)
def test_worst(statuses: list[HealthStatus], expected: HealthStatus) -> None:
    assert worst(statuses) is expected


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([("db", PASS, True), ("cache", PASS, False)], PASS),
        ([("db", WARN, True), ("cache", PASS, True)], WARN),
        ([("db", FAIL, True), ("cache", WARN, True)], FAIL),
        ([("db", PASS, True), ("cache", FAIL, False)], WARN),
        ([("db", PASS, True), ("cache", WARN, False)], WARN),
        ([("db", FAIL, False), ("cache", FAIL, False)], WARN),
    ],
)
def test_service_status_is_worst_of_critical_and_non_critical_fail_warns(
    checks: list[tuple[str, HealthStatus, bool]], expected: HealthStatus
) -> None:
    owned = OwnedChecks()
    for check, status, critical in checks:
        owned.observe(report(status, check=check, critical=critical))
    owned.observe(report(FAIL, service="other"))  # other services do not count
    assert service_status(owned, "api") is expected


def test_service_status_after_a_non_critical_check_expires() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS, check="db", ttl=60))
    owned.observe(report(PASS, check="cache", critical=False, ttl=5))
    owned.expire(T0 + 5)
    assert service_status(owned, "api") is WARN


def test_unknown_service_is_pass() -> None:
    assert service_status(OwnedChecks(), "nobody") is PASS


def test_restore() -> None:
    owned = OwnedChecks()
    state = CheckState("api", "i-1", "db", PASS, True, None, T0, T0 + 30)
    owned.restore([state])
    assert owned.checks() == [state]
    assert owned.observe(report(PASS, T0 - 1)) is None  # older than restored
    (change,) = owned.expire(T0 + 30)
    assert change.previous is PASS


def test_a_plan_leaves_the_owned_checks_alone_until_applied() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS, ttl=10))
    plan = owned.plan()
    assert plan.observe(report(WARN, T0 + 1)) is not None
    (expired,) = plan.expire(T0 + 40)  # the new report's own TTL (T0 + 31) ran out too
    assert (expired.previous, expired.state.status) == (WARN, FAIL)
    assert owned.get(("api", "i-1", "db")) == CheckState(
        "api", "i-1", "db", PASS, True, None, T0, T0 + 10
    )
    assert owned.plan().expire(T0 + 10)[0].previous is PASS, "the deadline is still due"

    owned.apply(plan)
    state = owned.get(("api", "i-1", "db"))
    assert state is not None
    assert (state.status, state.reported_at) == (FAIL, T0 + 1)
    assert owned.expire(T0 + 1000) == []


def test_an_applied_plan_keeps_the_deadlines_its_expiry_did_not_reach() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS, check="slow", ttl=60))
    plan = owned.plan()
    plan.observe(report(PASS, check="fast", ttl=5))
    assert plan.expire(T0 + 1) == []
    owned.apply(plan)
    assert [c.state.check for c in owned.expire(T0 + 5)] == ["fast"]
    assert [c.state.check for c in owned.expire(T0 + 60)] == ["slow"]


def test_due_reads_the_heap_in_order_without_popping() -> None:
    owned = OwnedChecks()
    for i, ttl in enumerate((50, 10, 40, 20, 30)):
        owned.observe(report(PASS, check=f"c{i}", ttl=ttl))
    assert [key[2] for _, key in owned.due(T0 + 35)] == ["c1", "c3", "c4"]
    assert len(owned.due(T0 + 35)) == 3


def test_a_report_stamped_too_far_ahead_is_refused_with_its_reason() -> None:
    now = T0
    assert too_far_ahead(report(PASS, now + 300), now, 300.0) is None
    assert too_far_ahead(report(PASS, now - 86_400), now, 300.0) is None
    reason = too_far_ahead(report(PASS, 253_402_300_799.0), now, 300.0)
    assert reason is not None
    assert "300s ahead" in reason
    assert too_far_ahead(report(PASS, now + 301), now, 300.0) is not None


# -- deregistration ------------------------------------------------------------------


def test_a_check_lapsed_for_deregister_after_is_removed_and_its_service_recovers() -> None:
    owned = OwnedChecks()
    owned.observe(report(PASS, instance="gone", ttl=10))
    owned.observe(report(PASS, T0 + 100, instance="alive", ttl=1_000))
    owned.expire(T0 + 10)
    assert service_status(owned, "api") is FAIL
    assert owned.deregister(T0 + 10 + 59, 60) == []
    (change,) = owned.deregister(T0 + 10 + 61, 60)
    assert (change.cause, change.previous, change.state.instance) == (
        ChangeCause.DEREGISTERED,
        FAIL,
        "gone",
    )
    assert owned.get(("api", "gone", "db")) is None
    assert service_status(owned, "api") is PASS
    assert owned.deregister(T0 + 10_000, 60) == [], "deregistered once"


def test_deregistration_reads_only_what_lapsed() -> None:
    owned = OwnedChecks()
    for i in range(1_000):
        owned.observe(report(PASS, instance=f"i-{i}", ttl=10_000))
    owned.observe(report(PASS, instance="gone", ttl=10))
    owned.expire(T0 + 10)
    assert len(owned.lapsed_before(T0 + 1_000)) == 1
    (change,) = owned.deregister(T0 + 1_000, 60)
    assert change.state.instance == "gone"
    assert owned.lapsed_before(T0 + 1_000) == [], "read entries are pruned"


def test_a_restored_failing_check_long_lapsed_is_deregistered() -> None:
    owned = OwnedChecks()
    state = CheckState("api", "i-1", "db", FAIL, True, None, T0, T0 + 30, 0)
    owned.restore([state])
    (change,) = owned.deregister(T0 + 30 + 3_601, 3_600)
    assert change.state == state
    assert len(owned) == 0


def test_a_check_that_last_reported_fail_and_went_silent_is_deregistered() -> None:
    # Consul's case: a critical check whose instance is gone. Its TTL running out is no
    # status change (it already fails), but it lapsed all the same.
    owned = OwnedChecks()
    owned.observe(report(FAIL, instance="gone", ttl=10))
    owned.observe(report(PASS, T0 + 100, instance="alive", ttl=1_000))
    assert owned.expire(T0 + 10) == []
    assert owned.deregister(T0 + 10 + 59, 60) == []
    (change,) = owned.deregister(T0 + 10 + 61, 60)
    assert (change.cause, change.previous, change.state.instance) == (
        ChangeCause.DEREGISTERED,
        FAIL,
        "gone",
    )
    assert service_status(owned, "api") is PASS


def test_a_failing_check_that_keeps_reporting_is_never_deregistered() -> None:
    owned = OwnedChecks()
    for i in range(100):
        owned.observe(report(FAIL, T0 + i * 10, ttl=10))
        owned.expire(T0 + i * 10 + 10)
        assert owned.deregister(T0 + i * 10 + 10, 60) == []
    assert service_status(owned, "api") is FAIL


def test_a_batch_that_lapses_and_deregisters_a_silent_failing_check_at_once() -> None:
    # A restart after a long outage: the check expires and is long past the span.
    owned = OwnedChecks()
    owned.restore([CheckState("api", "i-1", "db", PASS, True, None, T0, T0 + 30, 0)])
    owned.observe(report(FAIL, T0, instance="i-2", ttl=30))
    plan = owned.plan()
    (expired,) = plan.expire(T0 + 10_000)
    assert expired.state.instance == "i-1"
    gone = plan.deregister(T0 + 10_000, 60)
    assert sorted(c.state.instance for c in gone) == ["i-1", "i-2"]
    owned.apply(plan)
    assert len(owned) == 0
