"""SQLAlchemy: ``instrument(engine)`` listens to the engine's cursor events.

Works for a sync ``Engine`` and an ``AsyncEngine`` (through its ``sync_engine``); the
statement is the one sent to the driver (with its placeholders), the parameters are not
sent.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event

from opsmesh_client.client import Client, get_client
from opsmesh_client.sqltext import postgres_placeholders

_STARTED = "opsmesh_client_started"


def instrument(engine: Any, client: Client | None = None) -> None:
    sync_engine = getattr(engine, "sync_engine", engine)
    database = sync_engine.url.database
    # pyformat/format dialects (psycopg, psycopg2) write %s; asyncpg's already writes $1.
    rewrite = sync_engine.dialect.paramstyle in ("pyformat", "format")

    def before(
        _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        context.__dict__[_STARTED] = (time.time(), time.perf_counter())

    def after(
        _conn: Any, cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        active = client or get_client()
        started = context.__dict__.pop(_STARTED, None)
        if active is None or started is None:
            return
        rows = getattr(cursor, "rowcount", -1)
        active.query(
            postgres_placeholders(statement) if rewrite else statement,
            time.perf_counter() - started[1],
            started_at=started[0],
            database=database,
            rows=rows if isinstance(rows, int) and rows >= 0 else None,
        )

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
