"""Read queries over the delivery log, for the HTTP API (never used by the delivery path).

One row per (idempotency key, integration): the last attempt's outcome, how many sends
it took in all (``attempts``: retries are ``attempts - 1``), its status code and error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

MAX_LIMIT = 1000
MAX_KEYS = 100

_COLUMNS = (
    "idempotency_key, integration, receiver, channel, outcome, attempts, status_code,"
    " error, extract(epoch from finished_at)"
)


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    receiver: str | None = None
    integration: str | None = None
    outcome: str | None = None  # "delivered" or "failed"
    keys: tuple[str, ...] = ()  # idempotency keys, as the alert-engine logged them
    before: float | None = None  # finished strictly before (epoch seconds): the next page
    limit: int = 100


def _row(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "idempotency_key": r[0],
        "integration": r[1],
        "receiver": r[2],
        "channel": r[3],
        "result": r[4],
        "attempts": r[5],
        "retries": max(0, r[5] - 1),
        "status_code": r[6],
        "error": r[7],
        "finished_at": float(r[8]),
    }


class DeliveryReads:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def deliveries(self, f: DeliveryFilter) -> list[dict[str, Any]]:
        """The newest first; ``finished_at`` of the last row is the next page's ``before``."""
        where: list[str] = ["TRUE"]
        args: list[Any] = []
        for column, value in (
            ("receiver", f.receiver),
            ("integration", f.integration),
            ("outcome", f.outcome),
        ):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if f.keys:
            where.append("idempotency_key = ANY(%s::text[])")
            args.append(list(f.keys))
        if f.before is not None:
            where.append("finished_at < to_timestamp(%s)")
            args.append(f.before)
        args.append(f.limit)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM notifier.delivery_log WHERE {' AND '.join(where)}"  # noqa: S608 - fixed columns, values bound
                " ORDER BY finished_at DESC, idempotency_key, integration LIMIT %s",
                args,
            )
            return [_row(r) for r in await cursor.fetchall()]

    async def summary(self, since_s: float) -> list[dict[str, Any]]:
        """Per receiver and integration, over the deliveries finished in the last
        ``since_s`` seconds: how many delivered and failed, how many needed retries, and
        the last failure."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT receiver, integration,"
                " count(*) FILTER (WHERE outcome = 'delivered'),"
                " count(*) FILTER (WHERE outcome <> 'delivered'),"
                " count(*) FILTER (WHERE attempts > 1),"
                " coalesce(sum(attempts - 1) FILTER (WHERE attempts > 1), 0),"
                " extract(epoch from max(finished_at) FILTER (WHERE outcome <> 'delivered')),"
                " (array_agg(error ORDER BY finished_at DESC)"
                "   FILTER (WHERE outcome <> 'delivered'))[1]"
                " FROM notifier.delivery_log"
                " WHERE finished_at >= now() - make_interval(secs => %s)"
                " GROUP BY receiver, integration ORDER BY receiver, integration",
                (since_s,),
            )
            return [
                {
                    "receiver": r[0],
                    "integration": r[1],
                    "delivered": r[2],
                    "failed": r[3],
                    "retried": r[4],
                    "retries": int(r[5]),
                    "last_failure_at": float(r[6]) if r[6] is not None else None,
                    "last_error": r[7],
                }
                for r in await cursor.fetchall()
            ]

    async def outcomes(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The logged outcome of each (idempotency key, integration) pair that has a row."""
        if not pairs:
            return {}
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT d.idempotency_key, d.integration, d.outcome FROM notifier.delivery_log d"
                " JOIN unnest(%s::text[], %s::text[]) AS w(k, i)"
                " ON d.idempotency_key = w.k AND d.integration = w.i",
                ([k for k, _ in pairs], [i for _, i in pairs]),
            )
            return {(r[0], r[1]): r[2] for r in await cursor.fetchall()}
