"""alert-engine's batched PostgreSQL writes over a real server: the routed alerts a
group's owner persists, and the notification log of a flush."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alert_engine.core.alerts import AlertSource
from alert_engine.core.decision import LogEntry
from alert_engine.core.flush import FlushPlan
from alert_engine.core.grouping import AggregationGroup
from alert_engine.core.routing import Route
from alert_engine.core.validation import LAST_EPOCH, rfc3339
from alert_engine.pipeline.screening import Unacceptable, check_routed
from alert_engine.storage.active_alerts import ActiveAlertStore
from alert_engine.storage.notification_log import NotificationLog
from opsmesh.events import AlertsRouted, AlertState, NotifyReason, RoutedAlert
from opsmesh.kafka.codec import encode
from opsmesh_dev.infra import Endpoints

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=2, open=False) as p:
        yield p


def routed(
    fp: str,
    updated_at: float,
    *,
    summary: str = "",
    transition: tuple[AlertState, AlertState] | None = None,
    route_id: str = "0",
) -> RoutedAlert:
    return RoutedAlert(
        route_id=route_id,
        group_key='{}:{alertname="X"}',
        fingerprint=fp,
        labels={"alertname": "X", "fp": fp},
        annotations={"summary": summary},
        starts_at=T0,
        ends_at=T0 + 300,
        updated_at=updated_at,
        timeout=True,
        previous=transition[0] if transition else None,
        state=transition[1] if transition else None,
    )


async def history(pool: AsyncConnectionPool, fp: str) -> list[tuple[str, str]]:
    rows = await ActiveAlertStore(pool).history(fp, 100)
    return [(r["previous"], r["state"]) for r in rows]


async def test_persist_keeps_the_newest_report_and_writes_history_once(
    pool: AsyncConnectionPool,
) -> None:
    store = ActiveAlertStore(pool)
    a, b = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    fired = (AlertState.INACTIVE, AlertState.FIRING)
    first = AlertsRouted(
        alerts=[
            routed(a, T0 + 1, summary="one", transition=fired),
            routed(a, T0 + 1, summary="one", route_id="0.1"),  # a `continue` route's copy
            routed(b, T0 + 1, summary="b", transition=fired),
        ],
        origin="proc-1",
    )
    second = AlertsRouted(alerts=[routed(a, T0 + 2, summary="two")], origin="proc-2")
    records = [encode(first), encode(second)]
    assert await store.persist_routed(records, "owner") == set()
    # A replay after a crash changes nothing (and its rows are its own newest reports).
    assert await store.persist_routed(records, "owner") == set()
    # Nor does an older report: its alert's row, newer, is named for the read-back.
    assert await store.persist_routed([encode(first)], "owner") == {a}

    by_fp = {x.fingerprint: x for x in await store.load()}
    assert by_fp[a].annotations == {"summary": "two"}
    assert by_fp[a].updated_at == T0 + 2
    assert by_fp[a].timeout is True
    assert by_fp[b].annotations == {"summary": "b"}
    assert await history(pool, a) == [("inactive", "firing")]
    assert await history(pool, b) == [("inactive", "firing")]

    # The incremental re-read skips what the reading process merged or wrote itself.
    seen = {x.fingerprint for x in await store.load(T0, not_from="proc-2")}
    assert a not in seen
    assert b in seen
    assert not {a, b} & {x.fingerprint for x in await store.load(T0, not_from="owner")}


async def test_notification_log_records_a_flush_in_one_statement(
    pool: AsyncConnectionPool,
) -> None:
    log = NotificationLog(pool)
    route = Route("team")
    plans = []
    for i in range(3):
        key = f'{{}}:{{alertname="{uuid.uuid4().hex}"}}'
        group = AggregationGroup(key, route, {}, T0)
        entry = LogEntry(frozenset({f"f{i}", "g"}), frozenset({"r"} if i else ()), T0 + i, 1 + i)
        plans.append(
            FlushPlan(group, "team", NotifyReason.NEW_ALERTS, (), entry, f"k{i}", at=T0 + i)
        )
    plans.append(FlushPlan(AggregationGroup("{}:{}", route, {}, T0), "team", None, (), None, None))
    await log.record(plans)
    loaded = await log.load()
    for plan in plans[:3]:
        assert plan.entry is not None
        assert loaded[(plan.group.key, "team")] == plan.entry
    # Recorded again with a newer entry, the row is replaced.
    newer = LogEntry(frozenset({"x"}), frozenset(), T0 + 9, 9)
    group = plans[0].group
    await log.record([FlushPlan(group, "team", NotifyReason.NEW_ALERTS, (), newer, "k9")])
    assert (await log.load())[(group.key, "team")] == newer


async def test_a_group_key_longer_than_an_index_entry_is_logged_with_the_others(
    pool: AsyncConnectionPool,
) -> None:
    # Group keys reach 4,096 characters (routing.MAX_GROUP_KEY), beyond a btree entry
    # (~2.7 kB); longer here still. It must not fail the flush's one statement.
    labels = ",".join(f'l{i}="{secrets.token_hex(512)}"' for i in range(64))
    long_key, short_key = f"{{}}:{{{labels}}}", f'{{}}:{{alertname="{uuid.uuid4().hex}"}}'
    log, route = NotificationLog(pool), Route("team")

    def plan(key: str, sequence: int) -> FlushPlan:
        entry = LogEntry(frozenset({f"f{sequence}"}), frozenset(), T0 + sequence, sequence)
        group = AggregationGroup(key, route, {}, T0)
        return FlushPlan(group, "team", NotifyReason.NEW_ALERTS, (), entry, f"k{sequence}")

    assert await log.record([plan(long_key, 1), plan(short_key, 1)]) == {}
    loaded = await log.load()
    assert loaded[(long_key, "team")].sequence == 1
    assert loaded[(short_key, "team")].sequence == 1
    # A later sequence replaces it; an earlier one is refused and the held entry returned.
    assert await log.record([plan(long_key, 3)]) == {}
    held = await log.record([plan(long_key, 2)])
    assert held[(long_key, "team")].sequence == 3
    assert await log.forget([(long_key, "team", T0 + 3)]) == 1
    assert (long_key, "team") not in await log.load()


async def test_values_stored_before_validation_load_without_failing(
    pool: AsyncConnectionPool,
) -> None:
    """Rows an older version wrote (a year-10000 end, a Python-only regex) must not make
    every read, or the next start, fail: times are clamped, such a silence skipped."""
    store = ActiveAlertStore(pool)
    fp = uuid.uuid4().hex[:16]
    bad_silence, good_silence = uuid.uuid4().hex, uuid.uuid4().hex
    lookahead = [{"name": "a", "value": "(?=x)x", "isRegex": True, "isEqual": True}]
    plain = [{"name": "a", "value": "x", "isRegex": False, "isEqual": True}]
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO alert_engine.stored_alerts (fingerprint, labels, annotations,"
            " starts_at, ends_at, updated_at, source) VALUES (%s, %s, '{}', %s, %s, %s, %s)",
            (fp, Jsonb({"alertname": "Old", "fp": fp}), -5.0, 253_402_387_139.0, 1e300, "martian"),
        )
        for silence_id, matchers in ((bad_silence, lookahead), (good_silence, plain)):
            await conn.execute(
                "INSERT INTO alert_engine.silences (id, matchers, starts_at, ends_at,"
                " created_by, comment, updated_at) VALUES (%s, %s, %s, %s, 'me', 'c', %s)",
                (silence_id, Jsonb(matchers), T0, 1e300, T0),
            )
    try:
        (old,) = [a for a in await store.load() if a.fingerprint == fp]
        assert (old.starts_at, old.ends_at, old.updated_at) == (0.0, LAST_EPOCH, LAST_EPOCH)
        assert old.source is AlertSource.API
        assert rfc3339(old.ends_at) == "9999-12-31T23:59:59.000Z"
        silences = {s.id: s for s in await store.load_silences()}
        assert bad_silence not in silences
        assert silences[good_silence].ends_at == LAST_EPOCH
    finally:
        async with pool.connection() as conn:
            await conn.execute(
                "DELETE FROM alert_engine.stored_alerts WHERE fingerprint = %s", (fp,)
            )
            await conn.execute(
                "DELETE FROM alert_engine.silences WHERE id = ANY(%s)",
                ([bad_silence, good_silence],),
            )


async def test_postgresql_refuses_what_screening_dead_letters(pool: AsyncConnectionPool) -> None:
    """Why the alert-groups consumer screens records: one NUL fails the whole batch's
    statement, on every retry."""
    store = ActiveAlertStore(pool)
    poison = AlertsRouted(alerts=[routed(uuid.uuid4().hex[:16], T0, summary="bad\x00")])
    with pytest.raises(psycopg.errors.UntranslatableCharacter):
        await store.persist_routed([encode(poison)], "owner")
    with pytest.raises(Unacceptable, match="NUL"):
        check_routed(poison)


async def test_notification_log_entries_are_read_by_alert_group_and_receiver(
    pool: AsyncConnectionPool,
) -> None:
    """What the API's /api/v1/notifications reads: an alert's last notifications with
    their reasons and idempotency keys (the console joins them to the notifier's log)."""
    log, route = NotificationLog(pool), Route("team")
    fp, other = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    key = f'{{}}:{{alertname="{uuid.uuid4().hex}"}}'
    group = AggregationGroup(key, route, {}, T0)
    firing = LogEntry(frozenset({fp, other}), frozenset(), T0 + 1, 1)
    resolved = LogEntry(frozenset({other}), frozenset({fp}), T0 + 2, 2)
    await log.record(
        [
            FlushPlan(group, "team", NotifyReason.FIRST_NOTIFICATION, (), firing, "k-team"),
            FlushPlan(group, "pager", NotifyReason.SOME_RESOLVED, (), resolved, "k-pager"),
        ]
    )
    found = await log.entries(fingerprint=fp)
    assert [(e["receiver"], e["reason"], e["idempotency_key"]) for e in found] == [
        ("pager", "some_resolved", "k-pager"),  # newest first
        ("team", "first_notification", "k-team"),
    ]
    assert found[0]["resolved"] == [fp]
    assert found[1]["firing"] == sorted([fp, other])
    assert found[0]["group_key"] == key
    assert found[0]["notified_at"] == T0 + 2
    assert [e["receiver"] for e in await log.entries(group_key=key, receiver="team")] == ["team"]
    assert len(await log.entries(group_key=key)) == 2
    assert await log.entries(fingerprint=uuid.uuid4().hex) == []
    assert len(await log.entries(fingerprint=fp, limit=1)) == 1
