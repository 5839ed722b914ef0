"""What one consumed batch of notification requests is owed, decided without I/O.

The deliver stage plans the batch, looks the plan's pairs up in the delivery log and
claims the new ones, then has the plan ``decide`` with those answers and starts what it
says (``notifier.pipeline.deliver_stage``).

Each request is one of:

- ``Rejected``: a field PostgreSQL cannot store (these key the delivery log and Slack
  message refs), dead-lettered before any I/O that would fail on it for ever;
- ``NotConfigured``: no receiver by that name, dead-lettered;
- ``NothingToSend``: every integration has ``send_resolved`` off and the request carries
  no firing alert for it (``notifier.core.send_resolved``), reported as delivered;
- ``Deliver``: one ``Delivery`` per integration that is sent something, narrowed by its
  ``send_resolved``.

Exactly once per (idempotency key, integration) pair: the log is asked about each pair
the batch brings that is not already in flight here, once (``to_look_up``). A pair
already delivered, in flight, or queued earlier in the same batch is a duplicate (the
first copy's outcome stands); the others are queued, with the claim the log gave them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from notifier.core.send_resolved import for_integration
from opsmesh.events.notifications import NotificationRequested

Pair = tuple[str, str]  # (idempotency key, integration)


class Target(Protocol):
    """One integration of a receiver, as far as the plan needs to know it."""

    @property
    def integration(self) -> str: ...

    @property
    def send_resolved(self) -> bool: ...


class Consumed(Protocol):
    """A consumed record carrying a request."""

    @property
    def event(self) -> NotificationRequested: ...


R = TypeVar("R", bound=Consumed)
T = TypeVar("T", bound=Target)


@dataclass(frozen=True, slots=True)
class Rejected(Generic[R]):
    record: R
    problem: str


@dataclass(frozen=True, slots=True)
class NotConfigured(Generic[R]):
    record: R


@dataclass(frozen=True, slots=True)
class NothingToSend(Generic[R]):
    record: R


@dataclass(slots=True)
class Delivery(Generic[T]):
    destination: T
    request: NotificationRequested  # as this integration is sent it
    pair: Pair
    # Set by ``BatchPlan.decide`` once the log answered: a duplicate is not sent; a
    # queued delivery may go out at once when ``claimed``, else it waits for the claim.
    duplicate: bool = False
    claimed: bool = False


@dataclass(frozen=True, slots=True)
class Deliver(Generic[R, T]):
    record: R
    deliveries: tuple[Delivery[T], ...]


Planned = Rejected[R] | NotConfigured[R] | NothingToSend[R] | Deliver[R, T]


def unstorable(request: NotificationRequested) -> str | None:
    """Why the request cannot be recorded, or None."""
    for name in ("idempotency_key", "receiver", "group_key"):
        if "\x00" in getattr(request, name):
            return f"{name} contains a NUL character"
    return None


@dataclass(frozen=True, slots=True)
class BatchPlan(Generic[R, T]):
    requests: tuple[Planned[R, T], ...]  # one per record, in batch order
    to_look_up: tuple[Pair, ...]  # the pairs to ask the delivery log about, each once

    def to_claim(self, delivered: Container[Pair]) -> list[Pair]:
        """The looked-up pairs that are not delivered yet: claim them."""
        return [pair for pair in self.to_look_up if pair not in delivered]

    def decide(
        self,
        delivered: Container[Pair],
        claims: Mapping[Pair, bool],
        in_flight: Container[Pair],
    ) -> tuple[Planned[R, T], ...]:
        """Each delivery marked a duplicate or queued (claimed or not), in place: the
        plan of a batch is decided once, on the hot path. ``in_flight``: the pairs in
        flight now (a pair that finished since the plan is queued unclaimed, and its
        lane finds it delivered)."""
        queued: set[Pair] = set()
        for planned in self.requests:
            if not isinstance(planned, Deliver):
                continue
            for delivery in planned.deliveries:
                pair = delivery.pair
                if pair in delivered or pair in in_flight or pair in queued:
                    delivery.duplicate, delivery.claimed = True, False
                    continue
                queued.add(pair)
                delivery.duplicate, delivery.claimed = False, claims.get(pair, False)
        return self.requests


def plan_batch(
    batch: Sequence[R],
    destinations: Callable[[str], Sequence[T] | None],
    in_flight: Collection[Pair],
) -> BatchPlan[R, T]:
    """``destinations``: a receiver's integrations, None when it is not configured;
    ``in_flight``: the pairs this process is delivering now (not looked up again)."""
    planned: list[Planned[R, T]] = []
    to_look_up: list[Pair] = []
    seen: set[Pair] = set()
    for record in batch:
        request = record.event
        problem = unstorable(request)
        if problem is not None:
            planned.append(Rejected(record, problem))
            continue
        found = destinations(request.receiver)
        if found is None:
            planned.append(NotConfigured(record))
            continue
        key = request.idempotency_key
        deliveries = tuple(
            Delivery(destination, sent, (key, destination.integration))
            for destination in found
            if (sent := for_integration(request, destination.send_resolved)) is not None
        )
        if not deliveries:
            planned.append(NothingToSend(record))
            continue
        planned.append(Deliver(record, deliveries))
        for delivery in deliveries:
            pair = delivery.pair
            if pair not in in_flight and pair not in seen:
                seen.add(pair)
                to_look_up.append(pair)
    return BatchPlan(tuple(planned), tuple(to_look_up))
