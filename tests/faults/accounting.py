"""Lost and duplicated notifications of one fault case, from what the webhook sink received.

Every load group is one alert in a group of its own (``group_by: ['...']``), which fires
once and resolves once, so Alertmanager's semantics expect exactly one ``firing`` and
one ``resolved`` notification per group (``repeat_interval`` is far longer than a case):

- a (group, status) never received is **lost**;
- a (group, status) received more than once is a **duplicate**, of one of two kinds:
  ``resent`` (the same ``webhook-id``, i.e. the same idempotency key: the notifier's
  send→record window, which receivers close by dropping a repeated ``webhook-id``) or
  ``renotified`` (another idempotency key: the engine decided to notify twice, which no
  documented window allows).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("firing", "resolved")
ID_LABEL = "fault_id"


class DuplicateKind(enum.StrEnum):
    RESENT = "resent"  # same webhook-id: the send→record window
    RENOTIFIED = "renotified"  # another webhook-id: a second decision to notify


@dataclass(frozen=True, slots=True)
class Received:
    """One webhook as the sink recorded it."""

    fault_id: str
    status: str
    webhook_id: str | None
    reason: str | None

    @classmethod
    def from_sink(cls, entry: Mapping[str, Any]) -> Received | None:
        """None for a webhook that is not one of the load's groups."""
        payload = entry.get("payload") or {}
        fault_id = (payload.get("commonLabels") or {}).get(ID_LABEL)
        if not fault_id:
            return None
        return cls(
            fault_id=fault_id,
            status=str(payload.get("status")),
            webhook_id=entry.get("webhook_id"),
            reason=payload.get("notificationReason"),
        )


@dataclass(frozen=True, slots=True)
class Duplicate:
    fault_id: str
    status: str
    kind: DuplicateKind
    webhook_id: str | None
    reason: str | None

    def describe(self) -> str:
        return (
            f"{self.fault_id} {self.status} {self.kind} webhook_id={self.webhook_id}"
            f" reason={self.reason}"
        )


@dataclass(frozen=True, slots=True)
class Tally:
    expected: int  # (group, status) pairs
    lost: tuple[tuple[str, str], ...]
    duplicates: tuple[Duplicate, ...]
    unexpected: tuple[Received, ...] = field(default=())  # ids or statuses not in the load

    def count(self, kind: DuplicateKind) -> int:
        return sum(1 for d in self.duplicates if d.kind is kind)


def tally(fault_ids: Iterable[str], received: Iterable[Received]) -> Tally:
    """Account for every expected (group, status) against what was received, in order."""
    expected = {(fault_id, status) for fault_id in fault_ids for status in STATUSES}
    seen: dict[tuple[str, str], set[str | None]] = {}
    duplicates: list[Duplicate] = []
    unexpected: list[Received] = []
    for item in received:
        pair = (item.fault_id, item.status)
        if pair not in expected:
            unexpected.append(item)
            continue
        ids = seen.setdefault(pair, set())
        if ids:
            kind = DuplicateKind.RESENT if item.webhook_id in ids else DuplicateKind.RENOTIFIED
            duplicates.append(Duplicate(*pair, kind, item.webhook_id, item.reason))
        ids.add(item.webhook_id)
    lost = tuple(sorted(expected - seen.keys()))
    return Tally(len(expected), lost, tuple(duplicates), tuple(unexpected))


def received_for(entries: Iterable[Mapping[str, Any]], prefix: str) -> list[Received]:
    """The sink's entries that belong to one case (its ids start with ``prefix``)."""
    found = (Received.from_sink(e) for e in entries)
    return [r for r in found if r is not None and r.fault_id.startswith(prefix)]
