"""The active alerts (``stored_alerts``, their history) and the silences in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alert_engine.core.alerts import AlertSource, StoredAlert
from alert_engine.core.matchers import Matcher, MatcherError
from alert_engine.core.silences import Silence
from alert_engine.core.validation import clamp_epoch
from opsmesh.logging import get_logger

log = get_logger(__name__)

_UPSERT_ALERT = """
INSERT INTO alert_engine.stored_alerts
    (fingerprint, labels, annotations, starts_at, ends_at, updated_at, generator_url, timeout,
     source, origin, persisted_by, traceparent)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (fingerprint) DO UPDATE SET
    labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
    starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, updated_at = EXCLUDED.updated_at,
    generator_url = EXCLUDED.generator_url, timeout = EXCLUDED.timeout, source = EXCLUDED.source,
    origin = EXCLUDED.origin, persisted_by = EXCLUDED.persisted_by,
    traceparent = EXCLUDED.traceparent
WHERE alert_engine.stored_alerts.updated_at <= EXCLUDED.updated_at
"""
# The alerts of a batch of AlertsRouted records (their JSON as consumed, in one array):
# the newest report per fingerprint upserts its row unless the row is newer already (a
# replay, or another owner of a ``continue`` route got there first), and each carried
# transition is added to the history unless a replay added it before. One statement.
_PERSIST_ROUTED = """
WITH incoming AS (
    SELECT x.*, r.ev ->> 'origin' AS origin, r.n AS record_no
    FROM jsonb_array_elements(%s) WITH ORDINALITY AS r(ev, n),
         ROWS FROM (jsonb_to_recordset(r.ev -> 'alerts') AS (
             fingerprint text, labels jsonb, annotations jsonb, starts_at float8,
             ends_at float8, updated_at float8, generator_url text, timeout boolean,
             source text, previous text, state text, traceparent text))
         WITH ORDINALITY AS x(
             fingerprint, labels, annotations, starts_at, ends_at, updated_at,
             generator_url, timeout, source, previous, state, traceparent, n)
), newest AS (
    SELECT DISTINCT ON (fingerprint) *
    FROM incoming
    ORDER BY fingerprint, updated_at DESC, record_no DESC, n DESC
), upserted AS (
    INSERT INTO alert_engine.stored_alerts AS s
        (fingerprint, labels, annotations, starts_at, ends_at, updated_at, generator_url,
         timeout, source, origin, persisted_by, traceparent)
    SELECT fingerprint, labels, coalesce(annotations, '{}'), starts_at, ends_at, updated_at,
           coalesce(generator_url, ''), coalesce(timeout, false), coalesce(source, 'api'),
           coalesce(origin, ''), %s, coalesce(traceparent, '')
    FROM newest
    ON CONFLICT (fingerprint) DO UPDATE SET
        labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
        starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
        updated_at = EXCLUDED.updated_at, generator_url = EXCLUDED.generator_url,
        timeout = EXCLUDED.timeout, source = EXCLUDED.source, origin = EXCLUDED.origin,
        persisted_by = EXCLUDED.persisted_by, traceparent = EXCLUDED.traceparent
    WHERE s.updated_at <= EXCLUDED.updated_at
    RETURNING s.fingerprint
), history AS (
    INSERT INTO alert_engine.alert_history
        (fingerprint, rule, labels, previous, state, value, at)
    SELECT i.fingerprint, coalesce(i.labels ->> 'alertname', ''), i.labels, i.previous,
           i.state, NULL, to_timestamp(i.updated_at)
    FROM incoming i
    WHERE i.state IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM alert_engine.alert_history h
          WHERE h.fingerprint = i.fingerprint AND h.at = to_timestamp(i.updated_at)
            AND h.state = i.state)
    RETURNING 1
)
-- The alerts whose row is newer than the batch's newest report (a replay): not written.
SELECT n.fingerprint FROM newest n
WHERE n.fingerprint NOT IN (SELECT fingerprint FROM upserted)
"""
_HISTORY = """
INSERT INTO alert_engine.alert_history (fingerprint, rule, labels, previous, state, value, at)
VALUES (%s, %s, %s, %s, %s, NULL, to_timestamp(%s))
"""
_UPSERT_SILENCE = """
INSERT INTO alert_engine.silences
    (id, matchers, starts_at, ends_at, created_by, comment, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET
    matchers = EXCLUDED.matchers, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
    created_by = EXCLUDED.created_by, comment = EXCLUDED.comment, updated_at = EXCLUDED.updated_at
"""
_SELECT_ALERTS = (
    "SELECT fingerprint, labels, annotations, starts_at, ends_at, updated_at,"
    " generator_url, timeout, source, traceparent FROM alert_engine.stored_alerts"
)
_SELECT_SILENCES = (
    "SELECT id, matchers, starts_at, ends_at, created_by, comment, updated_at"
    " FROM alert_engine.silences"
)


def _alert(r: Sequence[Any]) -> StoredAlert:
    # Times clamped into years 1970..9999: rows written before times were checked must
    # still print (and notify) rather than fail every read.
    return StoredAlert(
        r[0],
        r[1],
        r[2],
        clamp_epoch(r[3]),
        None if r[4] is None else clamp_epoch(r[4]),
        clamp_epoch(r[5]),
        r[6],
        r[7],
        _source(r[8]),
        r[9],
    )


def _source(value: str) -> AlertSource:
    try:
        return AlertSource(value)
    except ValueError:
        return AlertSource.API


def _as_is(data: Any) -> Any:
    return data


def raw_jsonb(encoded: bytes) -> Jsonb:
    """A jsonb parameter from JSON already encoded (msgspec, or a consumed record): no
    Python-side dumping, the server parses it."""
    return Jsonb(encoded, dumps=_as_is)


def matcher_json(m: Matcher) -> dict[str, Any]:
    return {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}


class ActiveAlertStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._skipped: set[str] = set()  # silences left out on load, already logged

    async def persist_routed(self, records: Sequence[bytes], persisted_by: str = "") -> set[str]:
        """The alerts of ``AlertsRouted`` records (their JSON values, already validated by
        decoding), in one statement; idempotent, so a replayed batch changes nothing.
        ``persisted_by``: the writing process, which holds these alerts already.

        Each alert's row is the batch's newest report of it (greatest ``updated_at``, then
        the later record, then the later place in it) unless the row is newer already (a
        replay after a crash or a rebalance): returns the fingerprints of those, whose row
        the caller must read back (``load(fingerprints=...)``). So the common batch costs
        one round trip, not a write and a read of every row it wrote."""
        if not records:
            return set()
        array = b"[" + b",".join(records) + b"]"
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_PERSIST_ROUTED, (raw_jsonb(array), persisted_by))
            return {row[0] for row in await cursor.fetchall()}

    async def save(
        self,
        alerts: Sequence[StoredAlert],
        history: Sequence[tuple[StoredAlert, str, str, float]] = (),
        origin: str = "",
    ) -> None:
        """Upsert alerts; ``history`` rows are (alert, previous, state, at) for API alerts."""
        if not alerts and not history:
            return
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if alerts:
                await cur.executemany(
                    _UPSERT_ALERT,
                    [
                        (
                            a.fingerprint,
                            Jsonb(dict(a.labels)),
                            Jsonb(dict(a.annotations)),
                            a.starts_at,
                            a.ends_at,
                            a.updated_at,
                            a.generator_url,
                            a.timeout,
                            a.source.value,
                            origin,
                            origin,
                            a.trace,
                        )
                        for a in alerts
                    ],
                )
            if history:
                await cur.executemany(
                    _HISTORY,
                    [
                        (
                            a.fingerprint,
                            a.labels.get("alertname", ""),
                            Jsonb(dict(a.labels)),
                            prev,
                            state,
                            at,
                        )
                        for a, prev, state, at in history
                    ],
                )

    async def delete(self, alerts: Sequence[tuple[str, float]]) -> None:
        """Delete rows (fingerprint, updated_at) as they were judged collectable: a row
        updated since (the alert came back) is kept."""
        if not alerts:
            return
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM alert_engine.stored_alerts s"
                " USING unnest(%s::text[], %s::float8[]) AS g(fingerprint, updated_at)"
                " WHERE s.fingerprint = g.fingerprint AND s.updated_at <= g.updated_at",
                ([fp for fp, _ in alerts], [at for _, at in alerts]),
            )

    async def load(
        self,
        updated_after: float | None = None,
        not_from: str | None = None,
        *,
        fingerprints: Sequence[str] | None = None,
    ) -> list[StoredAlert]:
        """Every alert, or those updated after ``updated_after`` that process ``not_from``
        neither merged nor wrote (it holds those already), or those of ``fingerprints``."""
        query = _SELECT_ALERTS
        params: tuple[float | str | list[str], ...] = ()
        if fingerprints is not None:
            if not fingerprints:
                return []
            query += " WHERE fingerprint = ANY(%s)"
            params = (list(set(fingerprints)),)
        elif updated_after is not None:
            query += " WHERE updated_at > %s AND origin <> %s AND persisted_by <> %s"
            params = (updated_after, not_from or "", not_from or "")
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)
            rows = await cursor.fetchall()
        return [_alert(r) for r in rows]

    async def snapshot(self, timeout_s: float) -> tuple[list[StoredAlert], list[Silence]]:
        """Every alert and silence, as the API lists them on any replica: one read, each
        statement and the wait for a connection bounded by ``timeout_s`` (psycopg's and
        the pool's timeouts raise; the caller decides what to answer instead)."""
        async with self._pool.connection(timeout=timeout_s) as conn, conn.transaction():
            await conn.execute(
                "SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout_s * 1000)}ms",)
            )
            cursor = await conn.execute(_SELECT_ALERTS)
            alerts = [_alert(r) for r in await cursor.fetchall()]
            cursor = await conn.execute(_SELECT_SILENCES)
            silences = self._silences(await cursor.fetchall())
        return alerts, silences

    async def save_silences(self, silences: Sequence[Silence]) -> None:
        if not silences:
            return
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                _UPSERT_SILENCE,
                [
                    (
                        s.id,
                        Jsonb([matcher_json(m) for m in s.matchers]),
                        s.starts_at,
                        s.ends_at,
                        s.created_by,
                        s.comment,
                        s.updated_at,
                    )
                    for s in silences
                ],
            )

    async def load_silences(self) -> list[Silence]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_SELECT_SILENCES)
            rows = await cursor.fetchall()
        return self._silences(rows)

    def _silences(self, rows: Sequence[tuple[Any, ...]]) -> list[Silence]:
        silences = []
        for r in rows:
            try:
                matchers = tuple(
                    Matcher.from_api(m["name"], m["value"], m["isRegex"], m["isEqual"])
                    for m in r[1]
                )
            except MatcherError as exc:
                # Stored when Python's regex syntax was accepted (lookarounds,
                # backreferences): skipped, so the others (and restarts) keep working.
                # Logged once: silences are re-read every sync.
                if r[0] not in self._skipped:
                    self._skipped.add(r[0])
                    log.error("stored silence skipped", silence=r[0], error=str(exc)[:500])
                continue
            silences.append(
                Silence(
                    id=r[0],
                    matchers=matchers,
                    starts_at=clamp_epoch(r[2]),
                    ends_at=clamp_epoch(r[3]),
                    created_by=r[4],
                    comment=r[5],
                    updated_at=clamp_epoch(r[6]),
                )
            )
        return silences

    async def delete_silences(self, ids: Sequence[str]) -> None:
        if ids:
            async with self._pool.connection() as conn:
                await conn.execute(
                    "DELETE FROM alert_engine.silences WHERE id = ANY(%s)", (list(ids),)
                )

    async def suppressed(self, rows: Sequence[tuple[str, str, str, int]]) -> None:
        """Notifications held back: (group key, receiver, reason, alerts) each."""
        if not rows:
            return
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO alert_engine.suppressed_notifications"
                " (group_key, receiver, reason, alerts) VALUES (%s, %s, %s, %s)",
                rows,
            )

    async def list_suppressed(self, limit: int) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT group_key, receiver, reason, alerts, extract(epoch FROM at)::float8"
                " FROM alert_engine.suppressed_notifications ORDER BY id DESC LIMIT %s",
                (limit,),
            )
            rows = await cursor.fetchall()
        return [
            {"group_key": r[0], "receiver": r[1], "reason": r[2], "alerts": r[3], "at": r[4]}
            for r in rows
        ]

    async def history(self, fingerprint: str, limit: int) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT rule, labels, previous, state, value, extract(epoch FROM at)::float8"
                " FROM alert_engine.alert_history WHERE fingerprint = %s ORDER BY at, id LIMIT %s",
                (fingerprint, limit),
            )
            rows = await cursor.fetchall()
        return [
            {
                "rule": r[0],
                "labels": r[1],
                "previous": r[2],
                "state": r[3],
                "value": r[4],
                "at": r[5],
            }
            for r in rows
        ]
