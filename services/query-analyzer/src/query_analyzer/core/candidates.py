"""Candidate indexes from a statement's parse tree (pglast / libpg_query JSON AST).

Like Dexter, the candidates are every single column the statement filters, joins or
sorts on, and every ordered pair of such columns on the same table; the planner (with
hypothetical indexes) decides which of them helps. Columns written without a table
qualifier in a multi-table statement stay unresolved here (``table=None``); the shell
resolves them against the target's catalog.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import permutations
from typing import Any

from pglast import parser

_MAX_COLUMNS_PER_TABLE = 8
_FILTER_OPS = {"=", "<", ">", "<=", ">=", "~~", "~~*", "<>"}


class ColumnRole(enum.StrEnum):
    FILTER = "filter"
    JOIN = "join"
    SORT = "sort"


@dataclass(frozen=True, slots=True)
class ColumnUse:
    table: str | None  # relation name (schema-qualified when the SQL was)
    column: str
    role: ColumnRole


@dataclass(frozen=True, slots=True)
class IndexCandidate:
    table: str
    columns: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.table} ({', '.join(self.columns)})"


class _Scope:
    def __init__(self) -> None:
        self.relations: dict[str, str] = {}  # alias or name -> relation
        self.ctes: set[str] = set()


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _relations(stmt: dict[str, Any], scope: _Scope) -> None:
    for node in _walk(stmt):
        with_clause = node.get("withClause")
        if isinstance(with_clause, dict):
            for cte in with_clause.get("ctes", []):
                scope.ctes.add(cte.get("CommonTableExpr", {}).get("ctename", ""))
        rv = node.get("RangeVar")
        if isinstance(rv, dict) and rv.get("relname") not in scope.ctes:
            name = rv["relname"]
            if rv.get("schemaname"):
                name = f"{rv['schemaname']}.{name}"
            alias = rv.get("alias", {}).get("aliasname") or rv["relname"]
            scope.relations[alias] = name


def _column(node: Any, scope: _Scope) -> tuple[str | None, str] | None:
    if not isinstance(node, dict) or "ColumnRef" not in node:
        # A cast of a column (``col::date``) is not the column; an index would not serve it.
        return None
    fields = [f.get("String", {}).get("sval") for f in node["ColumnRef"].get("fields", [])]
    if not fields or any(f is None for f in fields):
        return None  # ``t.*``
    if len(fields) == 1:
        only = next(iter(scope.relations.values())) if len(scope.relations) == 1 else None
        return only, fields[0]
    qualifier, column = fields[-2], fields[-1]
    return scope.relations.get(qualifier), column


def _uses(stmt: dict[str, Any], scope: _Scope) -> Iterator[ColumnUse]:
    for node in _walk(stmt):
        expr = node.get("A_Expr")
        if isinstance(expr, dict):
            names: list[dict[str, Any]] = expr.get("name") or [{}]
            op = names[-1].get("String", {}).get("sval")
            kind = expr.get("kind")
            left = _column(expr.get("lexpr"), scope)
            right = _column(expr.get("rexpr"), scope)
            if left and right and op == "=":
                yield ColumnUse(left[0], left[1], ColumnRole.JOIN)
                yield ColumnUse(right[0], right[1], ColumnRole.JOIN)
            elif kind in ("AEXPR_IN", "AEXPR_BETWEEN", "AEXPR_LIKE", "AEXPR_ILIKE") or (
                kind == "AEXPR_OP" and op in _FILTER_OPS
            ):
                for side in (left, right):
                    if side:
                        yield ColumnUse(side[0], side[1], ColumnRole.FILTER)
        null_test = node.get("NullTest")
        if isinstance(null_test, dict):
            col = _column(null_test.get("arg"), scope)
            if col:
                yield ColumnUse(col[0], col[1], ColumnRole.FILTER)
        sort = node.get("SortBy")
        if isinstance(sort, dict):
            col = _column(sort.get("node"), scope)
            if col:
                yield ColumnUse(col[0], col[1], ColumnRole.SORT)


def _statement(sql: str) -> dict[str, Any] | None:
    try:
        tree = json.loads(parser.parse_sql_json(sql))
    except parser.ParseError:
        return None
    stmts = tree.get("stmts", [])
    if not stmts:
        return None
    stmt: dict[str, Any] = stmts[0].get("stmt", {})
    if not any(k in stmt for k in ("SelectStmt", "UpdateStmt", "DeleteStmt")):
        return None
    return stmt


def relations(sql: str) -> list[str]:
    """The tables the first statement reads (CTE names excluded)."""
    stmt = _statement(sql)
    if stmt is None:
        return []
    scope = _Scope()
    _relations(stmt, scope)
    return sorted(set(scope.relations.values()))


def column_uses(sql: str) -> list[ColumnUse]:
    """Columns the first statement filters, joins or sorts on; [] if it does not parse."""
    stmt = _statement(sql)
    if stmt is None:
        return []
    scope = _Scope()
    _relations(stmt, scope)
    seen: dict[tuple[str | None, str, ColumnRole], ColumnUse] = {}
    for use in _uses(stmt, scope):
        seen.setdefault((use.table, use.column, use.role), use)
    return list(seen.values())


def resolve(uses: list[ColumnUse], columns_of: dict[str, set[str]]) -> list[ColumnUse]:
    """Give unqualified columns the one table (of ``columns_of``) that has them."""
    resolved = []
    for use in uses:
        if use.table is None:
            owners = [t for t, cols in columns_of.items() if use.column in cols]
            if len(owners) != 1:
                continue  # ambiguous or unknown: an index on a guess is worse than none
            resolved.append(ColumnUse(owners[0], use.column, use.role))
        else:
            resolved.append(use)
    return resolved


def candidates(uses: list[ColumnUse]) -> list[IndexCandidate]:
    """Single columns, then ordered pairs per table (resolved uses only)."""
    by_table: dict[str, list[str]] = {}
    for use in uses:
        if use.table is None:
            continue
        columns = by_table.setdefault(use.table, [])
        if use.column not in columns and len(columns) < _MAX_COLUMNS_PER_TABLE:
            columns.append(use.column)
    singles = [IndexCandidate(t, (c,)) for t, cols in by_table.items() for c in cols]
    pairs = [
        IndexCandidate(t, pair) for t, cols in by_table.items() for pair in permutations(cols, 2)
    ]
    return singles + pairs


def covered_by(
    candidate: IndexCandidate, existing: list[tuple[str, ...]]
) -> tuple[str, ...] | None:
    """An existing index whose leading columns are the candidate's (it serves the same scans)."""
    n = len(candidate.columns)
    for columns in existing:
        if tuple(columns[:n]) == candidate.columns:
            return columns
    return None
