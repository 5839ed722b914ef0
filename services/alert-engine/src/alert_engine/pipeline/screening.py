"""Consumed records: what decoding cannot check, checked before anything is written.

msgspec enforces the events' types and sizes, but a string may still hold NUL (valid
JSON, ``\\u0000``, which PostgreSQL refuses in ``jsonb`` and ``text``), a time may lie
beyond year 9999 (``to_timestamp`` fails) and a free-text field may hold what the engine
cannot map back (an unknown alert ``source``). Such a record, produced by an older
version or by hand, would fail its batch's write on every retry and stop the consumer;
screened out here, it goes to the dead-letter topic with the reason, and the batch goes
on without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from alert_engine.core.alerts import AlertSource
from alert_engine.core.validation import check_epoch, describe, text_problem
from opsmesh.events.alerts import AlertsRouted
from opsmesh.events.base import Event
from opsmesh.events.signals import SignalObserved
from opsmesh.kafka.consumer import Received, Rejection
from opsmesh.kafka.dlq import DeadLetterReason

E = TypeVar("E", bound=Event)
_SOURCES = frozenset(s.value for s in AlertSource)


class Unacceptable(ValueError):
    pass


def _text(field: str, text: str) -> None:
    problem = text_problem(text)
    if problem is not None:
        raise Unacceptable(f"{field}: {describe(problem)}")


def _mapping(field: str, values: Mapping[str, str]) -> None:
    for name, value in values.items():
        _text(f"{field} name {name[:64]!r}", name)
        _text(f"{field}.{name}", value)


def _times(field: str, **times: float | None) -> None:
    for name, value in times.items():
        try:
            check_epoch(f"{field}.{name}", value)
        except ValueError as exc:
            raise Unacceptable(str(exc)) from None


def check_routed(event: AlertsRouted) -> None:
    _text("origin", event.origin)
    for i, a in enumerate(event.alerts):
        where = f"alerts[{i}]"
        for name, text in (
            ("route_id", a.route_id),
            ("group_key", a.group_key),
            ("fingerprint", a.fingerprint),
            ("generator_url", a.generator_url),
        ):
            _text(f"{where}.{name}", text)
        if a.source not in _SOURCES:
            raise Unacceptable(f"{where}.source: unknown source {a.source[:32]!r}")
        _mapping(f"{where}.labels", a.labels)
        _mapping(f"{where}.annotations", a.annotations)
        _times(where, starts_at=a.starts_at, ends_at=a.ends_at, updated_at=a.updated_at)


def check_signal(event: SignalObserved) -> None:
    _text("name", event.name)
    _text("subject", event.subject)
    _text("detail", event.detail or "")
    _mapping("labels", event.labels)
    for name in event.stats:
        _text(f"stats name {name[:64]!r}", name)
    _times(
        "signal",
        observed_at=event.observed_at,
        window_start=event.window_start,
        window_end=event.window_end,
    )


def screen(
    batch: Sequence[Received[E]], check: Callable[[E], None]
) -> tuple[list[Received[E]], list[Rejection]]:
    """(records to process, records to dead-letter with their reason)."""
    good: list[Received[E]] = []
    rejected: list[Rejection] = []
    for record in batch:
        try:
            check(record.event)
        except Unacceptable as exc:
            rejected.append(Rejection(record.raw, DeadLetterReason.SCHEMA_VIOLATION, str(exc)))
        else:
            good.append(record)
    return good, rejected
