"""Silences with Alertmanager's states and update rules.

A silence mutes alerts whose labels match all its matchers while it is active
(``starts_at <= now < ends_at``). Updating follows ``Silences.Set``: in place only when
the matchers are unchanged and history is not rewritten (an active silence keeps its
start and may not end in the past; a pending one may not start in the past; an expired
one is never changed); otherwise the old silence is expired and a new one created.
Deleting expires at once.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from alert_engine.core.matchers import Matcher, matches_all

MAX_MATCHERS = 64
MAX_COMMENT = 4096


class SilenceState(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


class SilenceError(ValueError):
    pass


class SilenceNotFound(KeyError):
    pass


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float

    def state(self, now: float) -> SilenceState:
        if now < self.starts_at:
            return SilenceState.PENDING
        if now < self.ends_at:
            return SilenceState.ACTIVE
        return SilenceState.EXPIRED

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        return self.state(now) is SilenceState.ACTIVE and matches_all(self.matchers, labels)


def validate(silence: Silence) -> None:
    if not silence.matchers:
        raise SilenceError("a silence needs at least one matcher")
    if len(silence.matchers) > MAX_MATCHERS:
        raise SilenceError(f"at most {MAX_MATCHERS} matchers")
    if all(m.matches({}) for m in silence.matchers):
        # Alertmanager refuses silences that would match every alert, even one with no labels.
        raise SilenceError("at least one matcher must not match the empty string")
    if silence.ends_at <= silence.starts_at:
        raise SilenceError("endsAt must be after startsAt")
    if not silence.created_by.strip():
        raise SilenceError("createdBy is required")
    if not silence.comment.strip():
        raise SilenceError("comment is required")
    if len(silence.comment) > MAX_COMMENT:
        raise SilenceError(f"comment longer than {MAX_COMMENT} characters")


class Silences:
    """All silences, with the set/expire rules; persistence is the caller's."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._by_id: dict[str, Silence] = {s.id: s for s in silences}

    def restore(self, silence: Silence) -> None:
        self._by_id[silence.id] = silence

    def all(self) -> list[Silence]:
        return sorted(self._by_id.values(), key=lambda s: (s.starts_at, s.id))

    def get(self, silence_id: str) -> Silence:
        try:
            return self._by_id[silence_id]
        except KeyError:
            raise SilenceNotFound(silence_id) from None

    def set(self, new: Silence, now: float) -> tuple[Silence, list[Silence]]:
        """Create or update. Returns the stored silence and every silence changed
        (for persistence): the new one, plus the old one when it was expired instead."""
        validate(new)
        old = self.get(new.id) if new.id else None
        if old is not None and self._can_update(old, new, now):
            updated = replace(new, updated_at=now)
            self._by_id[updated.id] = updated
            return updated, [updated]
        # A new silence (or a replacement). Refuse it before expiring anything, so a
        # refused update leaves the old silence as it was.
        if new.ends_at <= now:
            raise SilenceError("endsAt is in the past")
        changed = []
        if old is not None and old.state(now) is not SilenceState.EXPIRED:
            changed.append(self._expire(old, now))
        # As Silences.Set: a new silence never starts before it was created.
        created = replace(
            new, id=str(uuid.uuid4()), starts_at=max(new.starts_at, now), updated_at=now
        )
        self._by_id[created.id] = created
        return created, [*changed, created]

    def expire(self, silence_id: str, now: float) -> Silence:
        old = self.get(silence_id)
        if old.state(now) is SilenceState.EXPIRED:
            raise SilenceError(f"silence {silence_id} is already expired")
        return self._expire(old, now)

    def _expire(self, old: Silence, now: float) -> Silence:
        expired = replace(old, ends_at=now, starts_at=min(old.starts_at, now), updated_at=now)
        self._by_id[old.id] = expired
        return expired

    @staticmethod
    def _can_update(old: Silence, new: Silence, now: float) -> bool:
        if old.matchers != new.matchers:
            return False
        state = old.state(now)
        if state is SilenceState.EXPIRED:
            return False
        if state is SilenceState.ACTIVE:
            return new.starts_at == old.starts_at and new.ends_at >= now
        return new.starts_at >= now  # pending: may not move into the past

    def any_active(self, now: float) -> bool:
        """Whether any silence could mute something at ``now``."""
        return any(s.state(now) is SilenceState.ACTIVE for s in self._by_id.values())

    def muting(self, labels: Mapping[str, str], now: float) -> list[str]:
        """Ids of the active silences that mute these labels."""
        return [s.id for s in self._by_id.values() if s.mutes(labels, now)]

    def purge(self, before: float) -> list[str]:
        """Forget silences that ended before ``before`` (retention)."""
        gone = [s.id for s in self._by_id.values() if s.ends_at < before]
        for silence_id in gone:
            del self._by_id[silence_id]
        return gone
