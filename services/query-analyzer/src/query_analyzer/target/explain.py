"""EXPLAIN against the target database, always read-only and under a statement timeout.

The statement explained is the *sample* SQL kept from an event (real literals), because
normalised text (``$1``) cannot be planned as is. A sample that itself uses bind
parameters is planned as a generic plan: ``PREPARE`` then ``EXECUTE`` with NULLs under
``plan_cache_mode = force_generic_plan`` (PostgreSQL 15 has no ``EXPLAIN (GENERIC_PLAN)``;
this is what Dexter does before 16). ``EXPLAIN ANALYZE`` runs only when enabled, and its
transaction is always rolled back, so even a DML sample changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql

_PARAM = re.compile(r"\$(\d+)")
_MAX_PARAMS = 1000


class ExplainError(Exception):
    """The target could not plan the statement (syntax, missing relation, timeout...)."""


def parameter_count(statement: str) -> int:
    return max((int(n) for n in _PARAM.findall(statement)), default=0)


async def explain_on(conn: AsyncConnection[Any], statement: str, *, analyze: bool = False) -> Any:
    """EXPLAIN (FORMAT JSON) inside the caller's transaction; returns the JSON document."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    params = parameter_count(statement)
    async with conn.cursor() as cur:
        try:
            if params == 0:
                await cur.execute(sql.SQL(f"EXPLAIN ({options}) ") + sql.SQL(statement))
            else:
                if params > _MAX_PARAMS:
                    raise ExplainError(f"{params} parameters; refusing to plan")
                await cur.execute(sql.SQL("DEALLOCATE ALL"))
                await cur.execute(sql.SQL("PREPARE qa_generic AS ") + sql.SQL(statement))
                await cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                nulls = ", ".join(["NULL"] * params)
                await cur.execute(sql.SQL(f"EXPLAIN ({options}) EXECUTE qa_generic({nulls})"))
            row = await cur.fetchone()
        except psycopg.Error as exc:
            raise ExplainError(f"{type(exc).__name__}: {exc}".strip()[:500]) from exc
    if row is None:
        raise ExplainError("EXPLAIN returned nothing")
    return row[0]


class TargetDatabase:
    """A read-only view of the analysed database (give it a read-only role as well)."""

    def __init__(
        self, dsn: str, *, statement_timeout_ms: int = 5_000, analyze_enabled: bool = False
    ) -> None:
        self._dsn = dsn
        self._timeout_ms = statement_timeout_ms
        self.analyze_enabled = analyze_enabled

    @asynccontextmanager
    async def session(self, *, read_only: bool = True) -> AsyncIterator[AsyncConnection[Any]]:
        """One connection with a transaction that is always rolled back."""
        async with await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=True, application_name="query-analyzer"
        ) as conn:
            await conn.execute("BEGIN READ ONLY" if read_only else "BEGIN")
            await conn.execute(
                sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(self._timeout_ms))
            )
            try:
                yield conn
            finally:
                if not conn.closed:
                    await conn.execute("ROLLBACK")

    async def table_rows(self, relations: set[str]) -> dict[str, float]:
        """The catalog's row estimates (``reltuples``) of ``relations``."""
        found: dict[str, float] = {}
        async with self.session() as conn:
            for relation in sorted(relations):
                cur = await conn.execute(
                    "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (relation,)
                )
                row = await cur.fetchone()
                if row is not None and row[0] >= 0:
                    found[relation] = float(row[0])
        return found

    async def explain(self, statement: str, *, analyze: bool = False) -> Any:
        if analyze and not self.analyze_enabled:
            raise ExplainError("EXPLAIN ANALYZE is disabled (QUERY_ANALYZER_EXPLAIN_ANALYZE)")
        # ANALYZE of a DML sample needs a writable transaction; it is rolled back anyway.
        read_only = not (analyze and _is_dml(statement))
        async with self.session(read_only=read_only) as conn:
            try:
                return await explain_on(conn, statement, analyze=analyze)
            except ExplainError:
                raise
            except psycopg.Error as exc:
                raise ExplainError(str(exc)[:500]) from exc


def _is_dml(statement: str) -> bool:
    head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    return head in {"INSERT", "UPDATE", "DELETE", "MERGE", "WITH"}
