"""alert-engine's retention over real PostgreSQL, in simulated time: history and
rate-limited flushes older than ``ALERT_RETENTION_DAYS`` go in bounded batches; the
notification log forgets only the entries of groups this replica owns that are gone and
were last notified longer ago than its own retention; absence rules' series go after
their rule's ``forget_after``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from alert_engine.core.active_alerts import ActiveAlerts
from alert_engine.core.amconfig import default_config
from alert_engine.core.decision import LogEntry
from alert_engine.core.engine import Engine
from alert_engine.core.evaluation import Evaluator, SeriesSeen
from alert_engine.core.grouping import GroupedAlert
from alert_engine.core.rules import Rule, RuleKind
from alert_engine.core.silences import Silences
from alert_engine.pipeline.retention import NotificationLogPurge, purge_jobs
from alert_engine.pipeline.state import EngineState, Stores
from alert_engine.receiver_limits import Limits, ReceiverLimiter
from alert_engine.storage.active_alerts import ActiveAlertStore
from alert_engine.storage.notification_log import NotificationLog
from alert_engine.storage.rule_alerts import SeriesStore
from opsmesh.db.retention import Purger, PurgeStop, RetentionMetrics, days
from opsmesh.events.alerts import AlertStatus
from opsmesh.ratelimit import MemoryRateLimiter
from opsmesh.topics import ALERT_GROUPS, partition_for
from opsmesh_dev.infra import Endpoints
from opsmesh_dev.testing.clock import FakeClock

pytestmark = pytest.mark.integration

T0 = 1_000_000_000.0  # 2001: older than every row other tests write
HISTORY_DAYS, LOG_DAYS, FORGET_DAYS = 30, 45, 1


@pytest.fixture
async def pool(infra: Endpoints) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(infra.pg_dsn, min_size=1, max_size=2, open=False) as p:
        yield p


@pytest.fixture
async def clean_log(pool: AsyncConnectionPool) -> None:
    """No entry stamped before 2001 left by an earlier test (only these write them)."""
    async with pool.connection() as conn:
        await conn.execute(
            "DELETE FROM alert_engine.notification_log WHERE notified_at < %s", (T0,)
        )


class NoProducer:
    async def publish_many(self, items: Any) -> None:
        raise AssertionError("a purge sends nothing")


def engine_state(
    pool: AsyncConnectionPool, clock: FakeClock, evaluator: Evaluator | None = None
) -> EngineState:
    state = EngineState(
        engine=Engine(default_config(group_by=("alertname",)), ActiveAlerts(), Silences()),
        evaluator=evaluator or Evaluator([]),
        stores=Stores.over(pool),
        producer=NoProducer(),  # type: ignore[arg-type]
        limiter=ReceiverLimiter(MemoryRateLimiter(clock.now), Limits()),
        clock=clock,
        registry=CollectorRegistry(),
        external_url="http://engine",
    )
    state.restored.set()
    return state


def purger(pool: AsyncConnectionPool, state: EngineState, batch_rows: int) -> Purger:
    return Purger(
        purge_jobs(
            pool,
            state,
            retention_days=HISTORY_DAYS,
            notification_log_retention_days=LOG_DAYS,
            absence_forget_after_days=FORGET_DAYS,
        ),
        clock=state.clock,
        metrics=RetentionMetrics(CollectorRegistry()),
        interval_s=600,
        batch_rows=batch_rows,
    )


async def log_rows(pool: AsyncConnectionPool, rows: dict[str, float]) -> None:
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO alert_engine.notification_log (group_key, receiver, firing, resolved,"
            " sequence, reason, idempotency_key, notified_at)"
            " VALUES (%s, 'default', '{}', '{a}', 2, 'all_resolved', %s, %s)",
            [(key, f"k-{key}", at) for key, at in rows.items()],
        )


async def logged(pool: AsyncConnectionPool, keys: list[str]) -> set[str]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT group_key FROM alert_engine.notification_log WHERE group_key = ANY(%s)",
            (keys,),
        )
        return {r[0] for r in await cursor.fetchall()}


def group_key(name: str) -> str:
    return f'{{}}:{{alertname="{name}"}}'


async def test_history_and_suppressed_flushes_keep_their_retention(
    pool: AsyncConnectionPool,
) -> None:
    fp = uuid.uuid4().hex[:16]
    old = [T0 - days(HISTORY_DAYS + 1) - i for i in range(25)]
    young = [T0 - days(HISTORY_DAYS - 1), T0 - 60]
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO alert_engine.alert_history (fingerprint, rule, labels, previous,"
            " state, value, at) VALUES (%s, 'R', '{}', 'pending', 'firing', 1, to_timestamp(%s))",
            [(fp, at) for at in old + young],
        )
        await cur.executemany(
            "INSERT INTO alert_engine.suppressed_notifications (group_key, receiver, reason,"
            " alerts, at) VALUES (%s, 'default', 'rate_limited', 1, to_timestamp(%s))",
            [(fp, at) for at in (old[0], young[0])],
        )
    state = engine_state(pool, FakeClock(T0))

    reports = {r.table: r for r in await purger(pool, state, batch_rows=10).run_once()}

    history = reports["alert_engine.alert_history"]
    assert (history.rows, history.batches, history.stopped) == (25, 3, PurgeStop.DONE)
    assert [h["at"] for h in await ActiveAlertStore(pool).history(fp, 100)] == pytest.approx(young)
    assert reports["alert_engine.suppressed_notifications"].rows == 1
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT extract(epoch FROM at)::float8 FROM alert_engine.suppressed_notifications"
            " WHERE group_key = %s",
            (fp,),
        )
        assert [r[0] for r in await cursor.fetchall()] == pytest.approx([young[0]])


async def test_the_log_forgets_only_gone_groups_this_replica_owns(
    pool: AsyncConnectionPool, clean_log: None
) -> None:
    u = uuid.uuid4().hex[:8]
    old_at, young_at = T0 - days(LOG_DAYS + 1), T0 - days(LOG_DAYS - 1)
    gone = [group_key(f"{u}-gone-{i}") for i in range(5)]
    active = group_key(f"{u}-active")  # still holds an alert: kept whatever its age
    recent = group_key(f"{u}-recent")  # notified within the retention
    owned = {partition_for(k, ALERT_GROUPS.partitions) for k in [*gone, active, recent]}
    other = next(  # a group another replica owns: its owner decides
        k
        for k in (group_key(f"{u}-other-{i}") for i in range(1000))
        if partition_for(k, ALERT_GROUPS.partitions) not in owned
    )
    await log_rows(pool, {**dict.fromkeys([*gone, active, other], old_at), recent: young_at})
    state = engine_state(pool, FakeClock(T0))
    await state.assigned(owned)  # reads the log's entries, as a take-over does
    alert = GroupedAlert(
        "fp-active", {"alertname": f"{u}-active"}, {}, T0, None, AlertStatus.FIRING
    )
    assert state.engine.apply_routed("0", alert, T0, active) is not None

    job = NotificationLogPurge(state, days(LOG_DAYS))
    batches = [b async for b in job.batches(T0 - days(LOG_DAYS), 2)]

    assert await logged(pool, [*gone, active, recent, other]) == {active, recent, other}
    assert all((k, "default") not in state.entries for k in gone)
    assert (active, "default") in state.entries
    assert (recent, "default") in state.entries
    assert (other, "default") not in state.entries, (
        "another replica's entry leaves memory (re-read on assignment), not the table"
    )
    assert sum(b.deleted for b in batches) == 5
    assert all(b.deleted <= 2 for b in batches), "at most a batch per statement"


async def test_an_entry_logged_again_meanwhile_is_kept(pool: AsyncConnectionPool) -> None:
    key = group_key(f"{uuid.uuid4().hex[:8]}-relogged")
    old_at = T0 - days(LOG_DAYS + 1)
    await log_rows(pool, {key: old_at})
    log = NotificationLog(pool)
    (judged,) = [e for e in await log.expired(T0 - days(LOG_DAYS), 1000) if e[0] == key]
    async with pool.connection() as conn:  # a flush logs the group again
        await conn.execute(
            "UPDATE alert_engine.notification_log SET notified_at = %s, sequence = 3"
            " WHERE group_key = %s",
            (T0, key),
        )

    assert await log.forget([judged]) == 0
    assert await logged(pool, [key]) == {key}
    assert (await log.load())[(key, "default")] == LogEntry(frozenset(), frozenset({"a"}), T0, 3)


async def test_the_purger_walks_the_whole_expired_log_in_batches(
    pool: AsyncConnectionPool, clean_log: None
) -> None:
    """Entries it may not delete do not stall it: it pages past them."""
    u = uuid.uuid4().hex[:8]
    keys = [group_key(f"{u}-{i}") for i in range(30)]
    await log_rows(pool, {k: T0 - days(LOG_DAYS + 1) - i for i, k in enumerate(keys)})
    state = engine_state(pool, FakeClock(T0))
    mine = {k for k in keys if partition_for(k, ALERT_GROUPS.partitions) % 2 == 0}
    await state.assigned({p for p in range(ALERT_GROUPS.partitions) if p % 2 == 0})

    reports = {r.table: r for r in await purger(pool, state, batch_rows=4).run_once()}

    report = reports["alert_engine.notification_log"]
    assert report.stopped is PurgeStop.DONE
    assert report.rows == len(mine)
    assert report.batches > len(keys) // 4, "30 expired entries, 4 read per batch"
    assert await logged(pool, keys) == set(keys) - mine


async def test_silent_series_go_after_their_rules_forget_after(pool: AsyncConnectionPool) -> None:
    """The same cutoffs the evaluator forgets by: a rule's own ``forget_after``, else the
    default; rows of rules no longer configured after the default."""
    u = uuid.uuid4().hex[:8]
    short = Rule(
        name="Short",
        signal=f"s-{u}",
        kind=RuleKind.ABSENCE,
        absent_for_s=60,
        forget_after_s=7_200,
        group=u,
    )
    default = Rule(name="Default", signal=f"s-{u}", kind=RuleKind.ABSENCE, absent_for_s=60, group=u)
    gone_rule = f"{u}/Removed"
    hour = 3_600.0
    rows = {
        (short.key, "old"): T0 - 3 * hour,  # past its own 2 h
        (short.key, "young"): T0 - 1 * hour,
        (default.key, "three-hours"): T0 - 3 * hour,  # within the default day
        (default.key, "two-days"): T0 - 2 * days(1),
        (gone_rule, "two-days"): T0 - 2 * days(1),
        (gone_rule, "three-hours"): T0 - 3 * hour,
    }
    await SeriesStore(pool).save(
        [SeriesSeen(rule, fp, {"series": fp}, at) for (rule, fp), at in rows.items()]
    )
    evaluator = Evaluator([short, default], forget_after_s=days(FORGET_DAYS))
    state = engine_state(pool, FakeClock(T0), evaluator)

    reports = {r.table: r for r in await purger(pool, state, batch_rows=1).run_once()}

    report = reports["alert_engine.series_seen"]
    assert report.stopped is PurgeStop.DONE
    assert report.batches >= 3, "one row per batch"
    left = {(s.rule, s.fingerprint) for s in await SeriesStore(pool).load() if s.rule.startswith(u)}
    assert left == {(short.key, "young"), (default.key, "three-hours"), (gone_rule, "three-hours")}
