"""The deliver stage's batch plan, without I/O: what each request is owed, and which
deliveries are duplicates once the delivery log has answered."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from notifier.core.batch_plan import (
    Deliver,
    NotConfigured,
    NothingToSend,
    Pair,
    Rejected,
    plan_batch,
)
from notifier.samples import sample_request
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested


@dataclass(frozen=True)
class FakeDestination:
    integration: str
    send_resolved: bool = True


@dataclass(frozen=True)
class FakeRecord:
    event: NotificationRequested


HOOK = FakeDestination("webhook-0")
FIRING_ONLY = FakeDestination("webhook-1", send_resolved=False)
RECEIVERS = {"r": [HOOK, FIRING_ONLY]}


def record(
    key: str, *, status: AlertStatus = AlertStatus.FIRING, receiver: str = "r"
) -> FakeRecord:
    return FakeRecord(sample_request(receiver, key=key, status=status, now=1_700_000_000.0))


def test_each_integration_is_owed_what_its_send_resolved_allows() -> None:
    firing, resolved = record("a"), record("b", status=AlertStatus.RESOLVED)
    plan = plan_batch([firing, resolved], RECEIVERS.get, set())
    first, second = plan.requests
    assert isinstance(first, Deliver)
    assert [d.destination for d in first.deliveries] == [HOOK, FIRING_ONLY]
    assert isinstance(second, Deliver)
    # A resolve goes only to the integration that wants resolves.
    assert [d.destination for d in second.deliveries] == [HOOK]
    assert plan.to_look_up == (("a", "webhook-0"), ("a", "webhook-1"), ("b", "webhook-0"))


def test_a_resolve_no_integration_wants_is_nothing_to_send() -> None:
    plan = plan_batch([record("a", status=AlertStatus.RESOLVED)], {"r": [FIRING_ONLY]}.get, set())
    assert plan.requests == (NothingToSend(record("a", status=AlertStatus.RESOLVED)),)
    assert plan.to_look_up == ()


def test_an_unknown_receiver_is_not_configured() -> None:
    unknown = record("a", receiver="nobody")
    plan = plan_batch([unknown], RECEIVERS.get, set())
    assert plan.requests == (NotConfigured(unknown),)
    assert plan.to_look_up == ()


def test_a_key_postgresql_cannot_store_is_rejected_before_any_lookup() -> None:
    bad = FakeRecord(msgspec.structs.replace(record("a").event, idempotency_key="a\x00b"))
    plan = plan_batch([bad, record("ok")], RECEIVERS.get, set())
    assert plan.requests[0] == Rejected(bad, "idempotency_key contains a NUL character")
    # Only the storable request's pairs reach the delivery log.
    assert plan.to_look_up == (("ok", "webhook-0"), ("ok", "webhook-1"))


def test_the_same_request_twice_in_a_batch_is_looked_up_once_and_sent_once() -> None:
    plan = plan_batch([record("a"), record("a")], {"r": [HOOK]}.get, set())
    assert plan.to_look_up == (("a", "webhook-0"),)
    assert plan.to_claim(set()) == [("a", "webhook-0")]
    first, second = plan.decide(set(), {("a", "webhook-0"): True}, set())
    assert isinstance(first, Deliver)
    assert isinstance(second, Deliver)
    assert [(d.duplicate, d.claimed) for d in first.deliveries] == [(False, True)]
    assert [d.duplicate for d in second.deliveries] == [True]


def test_a_delivered_pair_is_a_duplicate_and_not_claimed() -> None:
    plan = plan_batch([record("a")], RECEIVERS.get, set())
    delivered: set[Pair] = {("a", "webhook-0")}
    assert plan.to_claim(delivered) == [("a", "webhook-1")]
    (decided,) = plan.decide(delivered, {("a", "webhook-1"): False}, set())
    assert isinstance(decided, Deliver)
    # Delivered before: the first outcome stands. The other pair's claim is held
    # elsewhere: it is queued unclaimed, to wait for that claim.
    assert [(d.duplicate, d.claimed) for d in decided.deliveries] == [(True, False), (False, False)]


def test_a_pair_in_flight_is_not_looked_up_again_and_is_a_duplicate() -> None:
    in_flight: set[Pair] = {("a", "webhook-0")}
    plan = plan_batch([record("a")], {"r": [HOOK]}.get, in_flight)
    assert plan.to_look_up == ()
    (decided,) = plan.decide(set(), {}, in_flight)
    assert isinstance(decided, Deliver)
    assert [d.duplicate for d in decided.deliveries] == [True]


def test_a_pair_that_finished_while_the_log_answered_is_queued_unclaimed() -> None:
    """In flight at the plan, finished by the decision: its lane asks the log again (and
    finds it delivered), rather than the plan guessing its outcome."""
    plan = plan_batch([record("a")], {"r": [HOOK]}.get, {("a", "webhook-0")})
    (decided,) = plan.decide(set(), {}, set())
    assert isinstance(decided, Deliver)
    assert [(d.duplicate, d.claimed) for d in decided.deliveries] == [(False, False)]


def test_a_narrowed_request_keeps_its_key() -> None:
    """A send_resolved-off integration gets the firing alerts only, under the same key."""
    mixed = msgspec.structs.replace(
        record("a").event,
        alerts=[*record("a").event.alerts, *record("x", status=AlertStatus.RESOLVED).event.alerts],
    )
    plan = plan_batch([FakeRecord(mixed)], {"r": [FIRING_ONLY]}.get, set())
    (planned,) = plan.requests
    assert isinstance(planned, Deliver)
    (delivery,) = planned.deliveries
    assert [a.status for a in delivery.request.alerts] == [AlertStatus.FIRING]
    assert delivery.pair == ("a", "webhook-1")
