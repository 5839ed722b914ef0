"""Silences: states, muting, validation and Alertmanager's Set/canUpdate/Expire rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alert_engine.core.matchers import Matcher, MatchType, parse_matchers
from alert_engine.core.silences import (
    Silence,
    SilenceError,
    SilenceNotFound,
    Silences,
    SilenceState,
    validate,
)

T0 = 1_700_000_000.0
HOUR = 3600.0


def silence(
    matchers: str = '{alertname="Down"}',
    starts: float = T0,
    ends: float = T0 + HOUR,
    *,
    id: str = "",
    created_by: str = "ann",
    comment: str = "maintenance",
) -> Silence:
    return Silence(id, tuple(parse_matchers(matchers)), starts, ends, created_by, comment, 0.0)


def test_states() -> None:
    s = silence(starts=T0, ends=T0 + HOUR)
    assert s.state(T0 - 1) is SilenceState.PENDING
    assert s.state(T0) is SilenceState.ACTIVE
    assert s.state(T0 + HOUR - 1) is SilenceState.ACTIVE
    assert s.state(T0 + HOUR) is SilenceState.EXPIRED
    assert s.state(T0 + 2 * HOUR) is SilenceState.EXPIRED


def test_mutes_only_while_active_and_matching() -> None:
    s = silence('{alertname="Down", env=~"prod|stage"}')
    down = {"alertname": "Down", "env": "prod", "host": "a"}
    assert s.mutes(down, T0 + 1)
    assert not s.mutes(down, T0 - 1)  # pending
    assert not s.mutes(down, T0 + HOUR)  # expired
    assert not s.mutes({**down, "env": "dev"}, T0 + 1)
    assert not s.mutes({"alertname": "Down"}, T0 + 1)  # env missing = ""


def test_create_assigns_an_id_and_updated_at() -> None:
    silences = Silences()
    created, changed = silences.set(silence(), now=T0 - 10)
    assert created.id
    assert created.updated_at == T0 - 10
    assert changed == [created]
    assert silences.get(created.id) == created
    other, _ = silences.set(silence(), now=T0 - 10)
    assert other.id != created.id
    assert len(silences.all()) == 2


def test_create_starting_in_the_past_starts_now() -> None:
    # Silences.Set: a new silence never starts before it was created.
    created, _ = Silences().set(silence(starts=T0 - HOUR, ends=T0 + HOUR), now=T0)
    assert created.starts_at == T0
    assert created.ends_at == T0 + HOUR
    assert created.state(T0) is SilenceState.ACTIVE
    future, _ = Silences().set(silence(starts=T0 + HOUR, ends=T0 + 2 * HOUR), now=T0)
    assert future.starts_at == T0 + HOUR
    assert future.state(T0) is SilenceState.PENDING


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (silence("{}"), "at least one matcher"),
        (silence('{a=""}'), "empty string"),
        (silence('{a=~".*"}'), "empty string"),
        (silence('{a="", b!="x", c=~"x|"}'), "empty string"),
        (silence(starts=T0, ends=T0), "endsAt"),
        (silence(starts=T0, ends=T0 - 1), "endsAt"),
        (silence(created_by=""), "createdBy"),
        (silence(created_by="  "), "createdBy"),
        (silence(comment=""), "comment"),
        (silence(comment="x" * 4097), "comment"),
    ],
)
def test_create_validation(bad: Silence, message: str) -> None:
    silences = Silences()
    with pytest.raises(SilenceError, match=message):
        silences.set(bad, now=T0 - 10)
    assert silences.all() == []


def test_a_matcher_that_does_not_match_empty_makes_it_valid() -> None:
    validate(silence('{a="", b=~".+"}'))
    validate(silence('{a!=""}'))
    too_many = tuple(Matcher(f"l{i}", MatchType.EQUAL, "x") for i in range(65))
    with pytest.raises(SilenceError, match="64"):
        validate(replace(silence(), matchers=too_many))


def test_create_ending_in_the_past_is_refused() -> None:
    silences = Silences()
    with pytest.raises(SilenceError, match="past"):
        silences.set(silence(starts=T0 - 2 * HOUR, ends=T0 - HOUR), now=T0)
    with pytest.raises(SilenceError, match="past"):
        silences.set(silence(starts=T0 - 2 * HOUR, ends=T0), now=T0)
    assert silences.all() == []


def test_update_unknown_id() -> None:
    with pytest.raises(SilenceNotFound):
        Silences().set(silence(id="nope"), now=T0)


def book_with(s: Silence, now: float) -> tuple[Silences, Silence]:
    silences = Silences()
    created, _ = silences.set(s, now)
    return silences, created


def test_active_update_in_place_extends_or_shortens_the_end() -> None:
    silences, old = book_with(silence(starts=T0, ends=T0 + HOUR), now=T0)
    now = T0 + 600
    longer, changed = silences.set(replace(old, ends_at=T0 + 3 * HOUR, comment="longer"), now)
    assert longer.id == old.id
    assert (longer.starts_at, longer.ends_at, longer.comment) == (T0, T0 + 3 * HOUR, "longer")
    assert longer.updated_at == now
    assert changed == [longer]
    assert len(silences.all()) == 1
    shorter, _ = silences.set(replace(old, ends_at=now + 1), now)
    assert shorter.id == old.id
    assert silences.get(old.id).ends_at == now + 1


def test_active_update_that_moves_the_start_replaces_it() -> None:
    silences, old = book_with(silence(starts=T0, ends=T0 + HOUR), now=T0)
    now = T0 + 600
    new, changed = silences.set(replace(old, starts_at=T0 + 60), now)
    assert new.id != old.id
    assert new.starts_at == now  # a replacement never starts in the past
    assert new.ends_at == T0 + HOUR
    expired = silences.get(old.id)
    assert expired.state(now) is SilenceState.EXPIRED
    assert expired.ends_at == now
    assert changed == [expired, new]
    assert [s.id for s in silences.all()] == [old.id, new.id]


def test_changed_matchers_always_replace() -> None:
    silences, old = book_with(silence('{alertname="Down"}'), now=T0)
    now = T0 + 1
    new, changed = silences.set(
        replace(old, matchers=tuple(parse_matchers('{alertname="Up"}'))), now
    )
    assert new.id != old.id
    assert [c.id for c in changed] == [old.id, new.id]
    assert silences.get(old.id).state(now) is SilenceState.EXPIRED
    assert new.mutes({"alertname": "Up"}, now)
    assert silences.muting({"alertname": "Down"}, now) == []


def test_pending_update_in_place_when_start_stays_in_the_future() -> None:
    silences, old = book_with(silence(starts=T0 + HOUR, ends=T0 + 2 * HOUR), now=T0)
    new, changed = silences.set(replace(old, starts_at=T0 + 30 * 60, ends_at=T0 + 5 * HOUR), T0)
    assert new.id == old.id
    assert (new.starts_at, new.ends_at) == (T0 + 30 * 60, T0 + 5 * HOUR)
    assert changed == [new]


def test_pending_update_moving_the_start_into_the_past_replaces_it() -> None:
    silences, old = book_with(silence(starts=T0 + HOUR, ends=T0 + 2 * HOUR), now=T0)
    now = T0 + 60
    new, changed = silences.set(replace(old, starts_at=T0), now)
    assert new.id != old.id
    assert new.starts_at == now
    assert new.state(now) is SilenceState.ACTIVE
    expired = silences.get(old.id)
    # expiring a pending silence: it never was active
    assert expired.starts_at == expired.ends_at == now
    assert changed == [expired, new]


def test_expired_silences_are_never_updated_in_place() -> None:
    silences, old = book_with(silence(starts=T0, ends=T0 + HOUR), now=T0)
    now = T0 + 2 * HOUR
    new, changed = silences.set(replace(old, ends_at=now + HOUR, starts_at=now), now)
    assert new.id != old.id
    assert changed == [new]  # the old one was expired already: nothing to change
    assert silences.get(old.id) == old
    assert new.state(now) is SilenceState.ACTIVE


def test_a_refused_update_leaves_the_old_silence_alone() -> None:
    silences, old = book_with(silence(starts=T0, ends=T0 + HOUR), now=T0)
    now = T0 + 600
    # active, matchers changed, and the new end is in the past: refused outright
    moved = replace(old, matchers=tuple(parse_matchers('{alertname="Up"}')), ends_at=now - 1)
    with pytest.raises(SilenceError, match="past"):
        silences.set(moved, now)
    assert silences.get(old.id) == old
    assert silences.get(old.id).state(now) is SilenceState.ACTIVE
    # an invalid update too
    with pytest.raises(SilenceError):
        silences.set(replace(old, comment=""), now)
    assert silences.get(old.id) == old
    assert len(silences.all()) == 1


def test_expire_is_immediate() -> None:
    silences, old = book_with(silence(starts=T0, ends=T0 + HOUR), now=T0)
    now = T0 + 60
    expired = silences.expire(old.id, now)
    assert expired.id == old.id
    assert (expired.starts_at, expired.ends_at, expired.updated_at) == (T0, now, now)
    assert silences.get(old.id).state(now) is SilenceState.EXPIRED
    assert silences.muting({"alertname": "Down"}, now) == []
    with pytest.raises(SilenceError, match="already expired"):
        silences.expire(old.id, now + 1)
    with pytest.raises(SilenceNotFound):
        silences.expire("missing", now)


def test_expire_a_pending_silence() -> None:
    silences, old = book_with(silence(starts=T0 + HOUR, ends=T0 + 2 * HOUR), now=T0)
    expired = silences.expire(old.id, T0)
    assert expired.starts_at == expired.ends_at == T0
    assert expired.state(T0) is SilenceState.EXPIRED
    assert expired.state(T0 + HOUR + 1) is SilenceState.EXPIRED


def test_muting_lists_active_matching_silences() -> None:
    silences = Silences()
    a, _ = silences.set(silence('{alertname="Down"}'), T0)
    b, _ = silences.set(silence('{host=~"a.*"}'), T0)
    silences.set(silence('{host="b"}'), T0)
    silences.set(silence('{alertname="Down"}', starts=T0 + HOUR, ends=T0 + 2 * HOUR), T0)
    assert sorted(silences.muting({"alertname": "Down", "host": "a1"}, T0 + 1)) == sorted(
        [a.id, b.id]
    )
    assert silences.muting({"alertname": "Up", "host": "c"}, T0 + 1) == []


def test_purge_forgets_silences_that_ended_before() -> None:
    silences = Silences()
    short, _ = silences.set(silence(ends=T0 + 60), T0)
    long, _ = silences.set(silence(ends=T0 + HOUR), T0)
    assert silences.purge(before=T0 + 60) == []  # ended exactly then: kept
    assert silences.purge(before=T0 + 61) == [short.id]
    assert [s.id for s in silences.all()] == [long.id]
    with pytest.raises(SilenceNotFound):
        silences.get(short.id)


def test_restore_and_all_order() -> None:
    later = replace(silence(starts=T0 + 10), id="b")
    earlier = replace(silence(starts=T0), id="c")
    same_start = replace(silence(starts=T0), id="a")
    silences = Silences([later, earlier])
    silences.restore(same_start)
    assert [s.id for s in silences.all()] == ["a", "c", "b"]
