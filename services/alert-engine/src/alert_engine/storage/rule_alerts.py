"""Rule alerts' state and history (one transaction per batch of transitions), and when
each absence rule last saw each series."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alert_engine.core.evaluation import AlertInstance, SeriesSeen, Transition
from opsmesh.events.alerts import AlertState

_UPSERT = """
INSERT INTO alert_engine.alerts
    (fingerprint, rule, labels, annotations, state, value, active_at, fired_at, resolved_at,
     last_true_at, keep_firing_since, traceparent, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (fingerprint) DO UPDATE SET
    rule = EXCLUDED.rule, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
    state = EXCLUDED.state, value = EXCLUDED.value, active_at = EXCLUDED.active_at,
    fired_at = EXCLUDED.fired_at, resolved_at = EXCLUDED.resolved_at,
    last_true_at = EXCLUDED.last_true_at, keep_firing_since = EXCLUDED.keep_firing_since,
    traceparent = EXCLUDED.traceparent, updated_at = now()
"""
_HISTORY = """
INSERT INTO alert_engine.alert_history (fingerprint, rule, labels, previous, state, value, at)
VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s))
"""
_SELECT = """
SELECT fingerprint, rule, labels, annotations, state, value, active_at, fired_at, resolved_at,
       last_true_at, keep_firing_since, traceparent
FROM alert_engine.alerts
"""


class RuleAlertStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def record(
        self, transitions: Sequence[Transition], updates: Sequence[AlertInstance] = ()
    ) -> None:
        """Store transitions (state + history) and state updates without a transition."""
        if not transitions and not updates:
            return
        upserts = [_row(a) for a in updates]
        deletes = []
        history = []
        for t in transitions:
            a = t.alert
            if a.state in (AlertState.INACTIVE, AlertState.RESOLVED):
                deletes.append((a.fingerprint,))
            else:
                upserts.append(_row(a))
            history.append(
                (
                    a.fingerprint,
                    a.rule,
                    Jsonb(dict(a.labels)),
                    t.previous.value,
                    a.state.value,
                    a.value,
                    t.at,
                )
            )
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if upserts:
                await cur.executemany(_UPSERT, upserts)
            if deletes:
                await cur.executemany(
                    "DELETE FROM alert_engine.alerts WHERE fingerprint = %s", deletes
                )
            if history:
                await cur.executemany(_HISTORY, history)

    async def load(self) -> list[AlertInstance]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_SELECT)
            rows = await cursor.fetchall()
        return [
            AlertInstance(
                fingerprint=r[0],
                rule=r[1],
                labels=r[2],
                annotations=r[3],
                state=AlertState(r[4]),
                value=r[5],
                active_at=r[6],
                fired_at=r[7],
                resolved_at=r[8],
                last_true_at=r[9],
                keep_firing_since=r[10],
                trace=r[11],
            )
            for r in rows
        ]


def _row(a: AlertInstance) -> tuple[object, ...]:
    return (
        a.fingerprint,
        a.rule,
        Jsonb(dict(a.labels)),
        Jsonb(dict(a.annotations)),
        a.state.value,
        a.value,
        a.active_at,
        a.fired_at,
        a.resolved_at,
        a.last_true_at,
        a.keep_firing_since,
        a.trace,
    )


_UPSERT_SERIES = """
INSERT INTO alert_engine.series_seen (rule, fingerprint, labels, last_seen)
VALUES (%s, %s, %s, %s)
ON CONFLICT (rule, fingerprint) DO UPDATE
SET labels = EXCLUDED.labels, last_seen = GREATEST(series_seen.last_seen, EXCLUDED.last_seen)
"""


class SeriesStore:
    """Absence rules' last-seen times per series."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def save(self, seen: Sequence[SeriesSeen]) -> None:
        if not seen:
            return
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                _UPSERT_SERIES,
                [(s.rule, s.fingerprint, Jsonb(dict(s.labels)), s.last_seen) for s in seen],
            )

    async def load(self) -> list[SeriesSeen]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT rule, fingerprint, labels, last_seen FROM alert_engine.series_seen"
            )
            rows = await cursor.fetchall()
        return [SeriesSeen(r[0], r[1], r[2], r[3]) for r in rows]
