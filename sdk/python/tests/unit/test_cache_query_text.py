"""What the L3 cache reads from a statement: one normalized form for the same query
written differently, the tables after FROM and JOIN, and which statements it refuses."""

from __future__ import annotations

import pytest

from opsmesh_client.cache.query_text import fingerprint, normalize, tables_read
from opsmesh_client.cache.settings import CacheError


def test_spacing_case_comments_and_placeholder_style_do_not_change_the_normal_form() -> None:
    a = normalize("SELECT name FROM authors WHERE id = %s")
    b = normalize("select  name\n  from Authors -- by id\n where id = $1;")
    c = normalize("/* hot */ SELECT name FROM authors WHERE id=%(id)s")
    assert a == b == c == "select name from authors where id = $1"
    assert normalize("SELECT count(*) FROM t") == normalize("select count ( * ) from t")


def test_string_literals_and_quoted_identifiers_keep_their_case_and_spacing() -> None:
    text = normalize("""SELECT 'A  b' FROM "Mixed  Case" WHERE x = 'it''s -- not a comment'""")
    assert text == """select 'A  b' from "Mixed  Case" where x = 'it''s -- not a comment'"""


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("SELECT * FROM authors", {"authors"}),
        ("SELECT * FROM public.authors a WHERE a.id = 1", {"authors"}),
        ("SELECT * FROM authors a, posts AS p WHERE a.id = p.author_id", {"authors", "posts"}),
        (
            "SELECT p.title FROM posts p JOIN authors a ON a.id = p.author_id "
            "LEFT JOIN tags t USING (id) ORDER BY 1",
            {"posts", "authors", "tags"},
        ),
        ("SELECT * FROM (SELECT id FROM posts) sub", {"posts"}),
        ("SELECT * FROM ONLY authors", {"authors"}),
        ('SELECT * FROM "Mixed Case" m', {"Mixed Case"}),
        (
            "WITH recent AS (SELECT * FROM posts WHERE id > 10) SELECT * FROM recent",
            {"posts", "recent"},  # the CTE's name too: only more invalidation
        ),
        ("SELECT count(*) FROM authors WHERE name = 'from posts'", {"authors"}),
        ("SELECT 1", set()),
    ],
)
def test_the_tables_read_are_the_items_after_from_and_join(sql: str, tables: set[str]) -> None:
    assert tables_read(normalize(sql)) == tables


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO authors VALUES (1, 'a')",
        "UPDATE authors SET name = 'x'",
        "DELETE FROM authors",
        "WITH gone AS (DELETE FROM posts RETURNING id) SELECT * FROM gone",
        "SELECT * FROM authors FOR UPDATE",
        "SELECT * FROM authors FOR SHARE",
    ],
)
def test_writes_and_locking_reads_are_refused(sql: str) -> None:
    with pytest.raises(CacheError):
        tables_read(normalize(sql))


def test_the_fingerprint_tells_parameters_and_their_types_apart() -> None:
    text = normalize("SELECT * FROM authors WHERE id = %s")
    assert fingerprint(text, [1]) == fingerprint(text, (1,))
    assert len({fingerprint(text, [1]), fingerprint(text, [2]), fingerprint(text, ["1"])}) == 3
    assert fingerprint(text, {"b": 1, "a": 2}) == fingerprint(text, {"a": 2, "b": 1})
