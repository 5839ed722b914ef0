"""Index candidates from the parse tree: filter, join and sort columns resolved to tables."""

from __future__ import annotations

from query_analyzer.core.candidates import (
    ColumnRole,
    ColumnUse,
    IndexCandidate,
    candidates,
    column_uses,
    covered_by,
)


def _set(sql: str) -> set[tuple[str | None, str, ColumnRole]]:
    return {(u.table, u.column, u.role) for u in column_uses(sql)}


def test_filters_joins_and_sorts_resolve_through_aliases() -> None:
    sql = (
        "SELECT o.* FROM shop.orders o JOIN users u ON u.id = o.user_id"
        " WHERE o.status = 'paid' AND o.total > 10 AND u.email LIKE 'a%'"
        " ORDER BY o.created_at DESC LIMIT 5"
    )
    assert _set(sql) == {
        ("users", "id", ColumnRole.JOIN),
        ("shop.orders", "user_id", ColumnRole.JOIN),
        ("shop.orders", "status", ColumnRole.FILTER),
        ("shop.orders", "total", ColumnRole.FILTER),
        ("users", "email", ColumnRole.FILTER),
        ("shop.orders", "created_at", ColumnRole.SORT),
    }


def test_unqualified_columns_resolve_only_with_one_table() -> None:
    assert _set("SELECT * FROM orders WHERE customer_id IN (1, 2) AND note IS NULL") == {
        ("orders", "customer_id", ColumnRole.FILTER),
        ("orders", "note", ColumnRole.FILTER),
    }
    assert _set("SELECT 1 FROM a, b WHERE x = 1") == {(None, "x", ColumnRole.FILTER)}


def test_ctes_are_not_tables_and_unparseable_sql_gives_nothing() -> None:
    assert _set("WITH c AS (SELECT 1 AS k) SELECT * FROM c WHERE k = 1") == {
        (None, "k", ColumnRole.FILTER)
    }
    assert column_uses("SELECT * FROM orders WHERE id = 'trunc") == []
    assert column_uses("INSERT INTO t VALUES (1)") == []


def test_candidates_are_singles_then_ordered_pairs_per_table() -> None:
    uses = [
        ColumnUse("t", "a", ColumnRole.FILTER),
        ColumnUse("t", "b", ColumnRole.SORT),
        ColumnUse("u", "c", ColumnRole.FILTER),
        ColumnUse(None, "z", ColumnRole.FILTER),
    ]
    assert candidates(uses) == [
        IndexCandidate("t", ("a",)),
        IndexCandidate("t", ("b",)),
        IndexCandidate("u", ("c",)),
        IndexCandidate("t", ("a", "b")),
        IndexCandidate("t", ("b", "a")),
    ]


def test_an_index_with_the_same_leading_columns_covers_a_candidate() -> None:
    existing = [("a", "b"), ("c",)]
    assert covered_by(IndexCandidate("t", ("a",)), existing) == ("a", "b")
    assert covered_by(IndexCandidate("t", ("b",)), existing) is None
    assert covered_by(IndexCandidate("t", ("c", "a")), existing) is None
