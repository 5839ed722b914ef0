"""Creating recommended indexes: one at a time, CONCURRENTLY, under an advisory lock, then
checking that the planner uses each one.

CONCURRENTLY cannot run inside a transaction, so the connection is in autocommit. A
failed CONCURRENTLY build leaves an INVALID index behind; it is reported, never
silently reused or dropped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from query_analyzer.core.plans import index_names
from query_analyzer.target.explain import ExplainError, explain_on

# One lock for every index build this tool does on a database (the value is arbitrary).
ADVISORY_LOCK = 0x0A1A_1D5E


class ApplyOutcome(enum.StrEnum):
    CREATED_AND_USED = "created_and_used"
    CREATED_NOT_USED = "created_not_used"
    ALREADY_EXISTS = "already_exists"
    INVALID_LEFTOVER = "invalid_leftover"
    LOCKED = "locked"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Applied:
    index: str
    outcome: ApplyOutcome
    detail: str = ""


@dataclass(frozen=True, slots=True)
class IndexToCreate:
    name: str
    table: str
    ddl: str
    sample_sql: str


async def apply_indexes(
    dsn: str, indexes: list[IndexToCreate], *, lock_timeout_ms: int = 5_000
) -> list[Applied]:
    results: list[Applied] = []
    async with await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, application_name="query-analyzer:create-missing-indexes"
    ) as conn:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK,))
        row = await cur.fetchone()
        if not row or not row[0]:
            return [
                Applied(i.name, ApplyOutcome.LOCKED, "another run holds the lock") for i in indexes
            ]
        try:
            # Waiting behind a long transaction for a lock would block writers queued
            # behind us; give up instead and let the operator retry.
            await conn.execute(
                sql.SQL("SET lock_timeout = {}").format(sql.Literal(lock_timeout_ms))
            )
            await conn.execute("SET statement_timeout = 0")
            for index in indexes:
                results.append(await _apply_one(conn, index))
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK,))
    return results


async def _apply_one(conn: psycopg.AsyncConnection[Any], index: IndexToCreate) -> Applied:
    cur = await conn.execute(
        "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)",
        (_qualified(index),),
    )
    row = await cur.fetchone()
    if row is not None:
        if row[0]:
            return Applied(index.name, ApplyOutcome.ALREADY_EXISTS)
        return Applied(
            index.name,
            ApplyOutcome.INVALID_LEFTOVER,
            "an INVALID index of this name is left from a failed build; DROP INDEX"
            " CONCURRENTLY it and retry",
        )
    try:
        await conn.execute(index.ddl.encode())
    except psycopg.Error as exc:
        return Applied(index.name, ApplyOutcome.FAILED, str(exc).strip()[:300])
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL transaction_read_only = on")
            plan = await explain_on(conn, index.sample_sql)
    except ExplainError as exc:
        return Applied(index.name, ApplyOutcome.CREATED_NOT_USED, f"cannot explain: {exc}")
    if index.name in index_names(plan):
        return Applied(index.name, ApplyOutcome.CREATED_AND_USED)
    return Applied(
        index.name, ApplyOutcome.CREATED_NOT_USED, f"plan uses {sorted(index_names(plan))}"
    )


def _qualified(index: IndexToCreate) -> str:
    schema = index.table.rsplit(".", 1)[0] if "." in index.table else None
    return f"{schema}.{index.name}" if schema else index.name
