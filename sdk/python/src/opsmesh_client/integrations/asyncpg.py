"""asyncpg: ``instrument(conn)`` adds a query logger that sends each statement.

asyncpg's query logger reports the statement, its elapsed time and its arguments after
each query; the arguments are not sent. For a pool, call it in the pool's ``init``.
"""

from __future__ import annotations

import time
from typing import Any

from opsmesh_client.client import Client, get_client


def instrument(connection: Any, client: Client | None = None) -> None:
    database = _database(connection)

    def logged(query: Any) -> None:
        active = client or get_client()
        if active is None:
            return
        elapsed = float(query.elapsed)
        active.query(
            str(query.query),
            elapsed,
            started_at=time.time() - elapsed,
            database=database,
        )

    connection.add_query_logger(logged)


def _database(connection: Any) -> str | None:
    params = getattr(connection, "_params", None)
    name = getattr(params, "database", None)
    return str(name) if name else None
