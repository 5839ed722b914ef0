"""Statements in PostgreSQL's own placeholder syntax.

psycopg, Django and SQLAlchemy's pyformat dialects write ``%s`` / ``%(name)s``; PostgreSQL
(and libpg_query, which query-analyzer fingerprints and explains with) reads ``$1``. The
hooks send ``$n`` so a statement parses as the server saw it; repeats of one name reuse
its number, as psycopg binds them. Like psycopg's own conversion, quotes are not looked
into: a ``%s`` in a literal is a placeholder to psycopg too.
"""

from __future__ import annotations

import re
from functools import lru_cache

# A placeholder, or an escaped percent.
_TOKEN = re.compile(r"%\((?P<name>[^)]+)\)[sbt]|%[sbt]|%%")


# An application runs the same few hundred statements over and over: each is converted
# once. Long texts (a generated IN list, a bulk insert) are rarely repeated and not kept.
_CACHED_SQL_MAX_CHARS = 4096


def postgres_placeholders(sql: str) -> str:
    if "%" not in sql:
        return sql
    if len(sql) > _CACHED_SQL_MAX_CHARS:
        return _convert(sql)
    return _cached(sql)


@lru_cache(maxsize=1024)
def _cached(sql: str) -> str:
    return _convert(sql)


def _convert(sql: str) -> str:
    names: dict[str, int] = {}
    position = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal position
        found = match.group(0)
        if found == "%%":
            return "%"
        name = match.group("name")
        if name is not None:
            if name not in names:
                position += 1
                names[name] = position
            return f"${names[name]}"
        position += 1
        return f"${position}"

    return _TOKEN.sub(replace, sql)
