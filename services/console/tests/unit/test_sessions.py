"""Sessions: opened by a login, expired by the injected clock, CSRF compared exactly."""

from __future__ import annotations

import itertools

from console.core.sessions import MAX_SESSIONS, Sessions
from opsmesh_dev.testing.clock import FakeClock


def test_a_session_lasts_its_ttl_and_knows_its_scopes() -> None:
    clock = FakeClock(1000.0)
    sessions = Sessions(clock, ttl_s=60)
    writer = sessions.open("token", frozenset({"read", "write"}))
    reader = sessions.open("token2", frozenset({"read"}))
    assert writer.can_write
    assert not reader.can_write
    assert sessions.get(writer.id) == writer
    clock.advance(59.9)
    assert sessions.get(writer.id) is not None
    clock.advance(0.1)
    assert sessions.get(writer.id) is None
    assert sessions.get(None) is None
    assert sessions.get("never-issued") is None


def test_csrf_must_match_exactly() -> None:
    session = Sessions(FakeClock(0.0), ttl_s=60).open("t", frozenset({"read"}))
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf + "x")


def test_closing_ends_a_session_and_the_oldest_goes_past_the_bound() -> None:
    ids = (f"id-{n}" for n in itertools.count())
    sessions = Sessions(FakeClock(0.0), ttl_s=60, secret=lambda: next(ids))
    first = sessions.open("t", frozenset({"read"}))
    sessions.close(first.id)
    assert sessions.get(first.id) is None
    opened = [sessions.open("t", frozenset({"read"})) for _ in range(MAX_SESSIONS + 1)]
    assert len(sessions) == MAX_SESSIONS
    assert sessions.get(opened[0].id) is None
    assert sessions.get(opened[-1].id) is not None
