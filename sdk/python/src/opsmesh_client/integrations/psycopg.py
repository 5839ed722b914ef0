"""psycopg 3: ``instrument(conn)`` makes the connection's cursors send each statement.

psycopg has no query hook, so the connection gets a cursor class of ours that times
``execute``/``executemany`` (``conn.execute`` goes through a cursor too). The statement is
sent as written, with its placeholders; the parameters never leave the process.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from opsmesh_client.client import Client, get_client
from opsmesh_client.sqltext import postgres_placeholders


def _database(connection: Any) -> str | None:
    return str(connection.info.dbname) or None


def _sql_text(query: Any, connection: Any) -> str:
    if isinstance(query, bytes):
        text = query.decode(errors="replace")
    elif isinstance(query, str):
        text = query
    else:
        text = str(query.as_string(connection))  # psycopg.sql.Composable
    return postgres_placeholders(text)


def _record(
    client: Client | None, cursor: Any, query: Any, started_at: float, elapsed: float
) -> None:
    client = client or get_client()
    if client is None:
        return
    rows = cursor.rowcount
    client.query(
        _sql_text(query, cursor.connection),
        elapsed,
        started_at=started_at,
        database=_database(cursor.connection),
        rows=rows if rows >= 0 else None,
    )


class TracedCursor(psycopg.Cursor[Any]):
    _opsmesh_client: Client | None = None

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> TracedCursor:
        started_at, started = time.time(), time.perf_counter()
        try:
            super().execute(query, params, **kwargs)
        finally:
            _record(self._opsmesh_client, self, query, started_at, time.perf_counter() - started)
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        started_at, started = time.time(), time.perf_counter()
        try:
            super().executemany(query, params_seq, **kwargs)
        finally:
            _record(self._opsmesh_client, self, query, started_at, time.perf_counter() - started)


class TracedAsyncCursor(psycopg.AsyncCursor[Any]):
    _opsmesh_client: Client | None = None

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> TracedAsyncCursor:
        started_at, started = time.time(), time.perf_counter()
        try:
            await super().execute(query, params, **kwargs)
        finally:
            _record(self._opsmesh_client, self, query, started_at, time.perf_counter() - started)
        return self

    async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        started_at, started = time.time(), time.perf_counter()
        try:
            await super().executemany(query, params_seq, **kwargs)
        finally:
            _record(self._opsmesh_client, self, query, started_at, time.perf_counter() - started)


def instrument(connection: Any, client: Client | None = None) -> None:
    """A ``psycopg.Connection`` or ``AsyncConnection`` (for a pool: in its ``configure``)."""
    if isinstance(connection, psycopg.AsyncConnection):
        base: type[Any] = TracedAsyncCursor
    else:
        base = TracedCursor
    connection.cursor_factory = type(base.__name__, (base,), {"_opsmesh_client": client})
