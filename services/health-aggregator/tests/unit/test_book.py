"""HealthBook: status changes, stale reports, TTL expiry and per-service roll-up."""

from __future__ import annotations

import pytest

from health_aggregator.core.book import ChangeCause, CheckState, HealthBook, too_far_ahead, worst
from health_aggregator.core.policy import Policy, service_health
from opsmesh.events.health import HealthReported, HealthStatus

T0 = 1_700_000_000.0
PASS, WARN, FAIL = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL


def service_status(book: HealthBook, service: str) -> HealthStatus:
    """The service's status from the book's checks, as the API and the view work it out
    under the default policy (``all``: every instance healthy)."""
    checks = [c for c in book.checks() if c.service == service]
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
    book = HealthBook()
    change = book.observe(report(PASS, output="ok"))
    assert change is not None
    assert (change.previous, change.cause, change.at) == (None, ChangeCause.REPORTED, T0)
    assert change.state == CheckState("api", "i-1", "db", PASS, True, "ok", T0, T0 + 30)
    assert book.get(("api", "i-1", "db")) == change.state


def test_same_status_is_not_a_change_but_refreshes_the_ttl() -> None:
    book = HealthBook()
    book.observe(report(PASS))
    assert book.observe(report(PASS, T0 + 20)) is None
    state = book.get(("api", "i-1", "db"))
    assert state is not None
    assert state.expires_at == T0 + 50
    assert book.expire(T0 + 49) == []


def test_status_change_is_reported_with_previous() -> None:
    book = HealthBook()
    book.observe(report(PASS))
    change = book.observe(report(FAIL, T0 + 10))
    assert change is not None
    assert (change.previous, change.state.status, change.at) == (PASS, FAIL, T0 + 10)
    back = book.observe(report(PASS, T0 + 20))
    assert back is not None
    assert (back.previous, back.state.status) == (FAIL, PASS)


def test_older_report_is_ignored() -> None:
    book = HealthBook()
    book.observe(report(PASS, T0 + 10))
    assert book.observe(report(FAIL, T0 + 5)) is None
    state = book.get(("api", "i-1", "db"))
    assert state is not None
    assert (state.status, state.reported_at) == (PASS, T0 + 10)


def test_checks_are_keyed_by_service_instance_and_check() -> None:
    book = HealthBook()
    book.observe(report(PASS))
    assert book.observe(report(PASS, instance="i-2")) is not None
    assert book.observe(report(PASS, check="cache")) is not None
    assert book.observe(report(PASS, service="web")) is not None
    assert len(book.checks()) == 4
    assert book.services() == ["api", "web"]


def test_ttl_expiry_fails_the_check_exactly_at_reported_at_plus_ttl() -> None:
    book = HealthBook()
    book.observe(report(PASS, ttl=30))
    assert book.expire(T0 + 29.999) == []
    (change,) = book.expire(T0 + 30)
    assert change.cause is ChangeCause.TTL_EXPIRED
    assert (change.previous, change.state.status, change.at) == (PASS, FAIL, T0 + 30)
    assert change.state.output is not None
    assert "TTL" in change.state.output
    assert service_status(book, "api") is FAIL


def test_ttl_expiry_is_reported_once() -> None:
    book = HealthBook()
    book.observe(report(WARN, ttl=10))
    assert len(book.expire(T0 + 10)) == 1
    assert book.expire(T0 + 11) == []
    assert book.expire(T0 + 1000) == []


def test_a_failing_check_expiring_is_not_a_change() -> None:
    book = HealthBook()
    book.observe(report(FAIL, ttl=10))
    assert book.expire(T0 + 10) == []


def test_a_new_report_after_expiry_recovers() -> None:
    book = HealthBook()
    book.observe(report(PASS, ttl=10))
    book.expire(T0 + 10)
    change = book.observe(report(PASS, T0 + 15, ttl=10))
    assert change is not None
    assert change.cause is ChangeCause.REPORTED
    assert (change.previous, change.state.status) == (FAIL, PASS)
    assert book.expire(T0 + 24) == []
    assert len(book.expire(T0 + 25)) == 1


def test_only_the_stale_checks_expire() -> None:
    book = HealthBook()
    book.observe(report(PASS, check="slow", ttl=60))
    book.observe(report(PASS, check="fast", ttl=5))
    (change,) = book.expire(T0 + 5)
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
    book = HealthBook()
    for check, status, critical in checks:
        book.observe(report(status, check=check, critical=critical))
    book.observe(report(FAIL, service="other"))  # other services do not count
    assert service_status(book, "api") is expected


def test_service_status_after_a_non_critical_check_expires() -> None:
    book = HealthBook()
    book.observe(report(PASS, check="db", ttl=60))
    book.observe(report(PASS, check="cache", critical=False, ttl=5))
    book.expire(T0 + 5)
    assert service_status(book, "api") is WARN


def test_unknown_service_is_pass() -> None:
    assert service_status(HealthBook(), "nobody") is PASS


def test_restore() -> None:
    book = HealthBook()
    state = CheckState("api", "i-1", "db", PASS, True, None, T0, T0 + 30)
    book.restore([state])
    assert book.checks() == [state]
    assert book.observe(report(PASS, T0 - 1)) is None  # older than restored
    (change,) = book.expire(T0 + 30)
    assert change.previous is PASS


def test_a_plan_leaves_the_book_alone_until_applied() -> None:
    book = HealthBook()
    book.observe(report(PASS, ttl=10))
    plan = book.plan()
    assert plan.observe(report(WARN, T0 + 1)) is not None
    (expired,) = plan.expire(T0 + 40)  # the new report's own TTL (T0 + 31) ran out too
    assert (expired.previous, expired.state.status) == (WARN, FAIL)
    assert book.get(("api", "i-1", "db")) == CheckState(
        "api", "i-1", "db", PASS, True, None, T0, T0 + 10
    )
    assert book.plan().expire(T0 + 10)[0].previous is PASS, "the deadline is still due"

    book.apply(plan)
    state = book.get(("api", "i-1", "db"))
    assert state is not None
    assert (state.status, state.reported_at) == (FAIL, T0 + 1)
    assert book.expire(T0 + 1000) == []


def test_an_applied_plan_keeps_the_deadlines_its_expiry_did_not_reach() -> None:
    book = HealthBook()
    book.observe(report(PASS, check="slow", ttl=60))
    plan = book.plan()
    plan.observe(report(PASS, check="fast", ttl=5))
    assert plan.expire(T0 + 1) == []
    book.apply(plan)
    assert [c.state.check for c in book.expire(T0 + 5)] == ["fast"]
    assert [c.state.check for c in book.expire(T0 + 60)] == ["slow"]


def test_due_reads_the_heap_in_order_without_popping() -> None:
    book = HealthBook()
    for i, ttl in enumerate((50, 10, 40, 20, 30)):
        book.observe(report(PASS, check=f"c{i}", ttl=ttl))
    assert [key[2] for _, key in book.due(T0 + 35)] == ["c1", "c3", "c4"]
    assert len(book.due(T0 + 35)) == 3


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
    book = HealthBook()
    book.observe(report(PASS, instance="gone", ttl=10))
    book.observe(report(PASS, T0 + 100, instance="alive", ttl=1_000))
    book.expire(T0 + 10)
    assert service_status(book, "api") is FAIL
    assert book.deregister(T0 + 10 + 59, 60) == []
    (change,) = book.deregister(T0 + 10 + 61, 60)
    assert (change.cause, change.previous, change.state.instance) == (
        ChangeCause.DEREGISTERED,
        FAIL,
        "gone",
    )
    assert book.get(("api", "gone", "db")) is None
    assert service_status(book, "api") is PASS
    assert book.deregister(T0 + 10_000, 60) == [], "deregistered once"


def test_deregistration_reads_only_what_lapsed() -> None:
    book = HealthBook()
    for i in range(1_000):
        book.observe(report(PASS, instance=f"i-{i}", ttl=10_000))
    book.observe(report(PASS, instance="gone", ttl=10))
    book.expire(T0 + 10)
    assert len(book.lapsed_before(T0 + 1_000)) == 1
    (change,) = book.deregister(T0 + 1_000, 60)
    assert change.state.instance == "gone"
    assert book.lapsed_before(T0 + 1_000) == [], "read entries are pruned"


def test_a_restored_failing_check_long_lapsed_is_deregistered() -> None:
    book = HealthBook()
    state = CheckState("api", "i-1", "db", FAIL, True, None, T0, T0 + 30, 0)
    book.restore([state])
    (change,) = book.deregister(T0 + 30 + 3_601, 3_600)
    assert change.state == state
    assert len(book) == 0


def test_a_check_that_last_reported_fail_and_went_silent_is_deregistered() -> None:
    # Consul's case: a critical check whose instance is gone. Its TTL running out is no
    # status change (it already fails), but it lapsed all the same.
    book = HealthBook()
    book.observe(report(FAIL, instance="gone", ttl=10))
    book.observe(report(PASS, T0 + 100, instance="alive", ttl=1_000))
    assert book.expire(T0 + 10) == []
    assert book.deregister(T0 + 10 + 59, 60) == []
    (change,) = book.deregister(T0 + 10 + 61, 60)
    assert (change.cause, change.previous, change.state.instance) == (
        ChangeCause.DEREGISTERED,
        FAIL,
        "gone",
    )
    assert service_status(book, "api") is PASS


def test_a_failing_check_that_keeps_reporting_is_never_deregistered() -> None:
    book = HealthBook()
    for i in range(100):
        book.observe(report(FAIL, T0 + i * 10, ttl=10))
        book.expire(T0 + i * 10 + 10)
        assert book.deregister(T0 + i * 10 + 10, 60) == []
    assert service_status(book, "api") is FAIL


def test_a_batch_that_lapses_and_deregisters_a_silent_failing_check_at_once() -> None:
    # A restart after a long outage: the check expires and is long past the span.
    book = HealthBook()
    book.restore([CheckState("api", "i-1", "db", PASS, True, None, T0, T0 + 30, 0)])
    book.observe(report(FAIL, T0, instance="i-2", ttl=30))
    plan = book.plan()
    (expired,) = plan.expire(T0 + 10_000)
    assert expired.state.instance == "i-1"
    gone = plan.deregister(T0 + 10_000, 60)
    assert sorted(c.state.instance for c in gone) == ["i-1", "i-2"]
    book.apply(plan)
    assert len(book) == 0
