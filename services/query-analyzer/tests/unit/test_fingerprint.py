"""Query fingerprints over a labelled corpus: one fingerprint per template, never shared.

Each template is instantiated many times with varied literals, IN-list lengths,
comments, whitespace and keyword case; a good fingerprint sees through all of it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable

import pytest

from query_analyzer.core.fingerprint import (
    FINGERPRINT_VERSION,
    REGEX_VERSION,
    Fingerprint,
    FingerprintKind,
    fingerprint,
)

INSTANCES_PER_TEMPLATE = 25


class Literals:
    """Random literal values of the shapes applications actually send."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def num(self) -> str:
        return self.rng.choice(
            [
                str(self.rng.randint(0, 10**9)),
                str(self.rng.randint(0, 9)),
                f"{self.rng.uniform(0, 1000):.3f}",
                "$" + str(self.rng.randint(1, 9)),  # a bind parameter instead of a literal
            ]
        )

    def text(self) -> str:
        return self.rng.choice(
            [
                "''",
                "'alice'",
                "'O''Brien'",
                "'a--b'",  # looks like a comment
                "'/* not a comment */'",
                "'2024-01-01 00:00:00+00'",
                f"'{self.rng.randint(0, 10**6)}'",
                "'ünïcødé'",
            ]
        )

    def nums(self) -> str:
        return ", ".join(self.num() for _ in range(self.rng.randint(1, 12)))

    def texts(self) -> str:
        return ", ".join(self.text() for _ in range(self.rng.randint(1, 8)))


Template = Callable[[Literals], str]

# Templates that PostgreSQL parses. The columns and tables differ on purpose:
# libpg_query treats ``x = 1`` and ``x IN (1, 2)`` as one shape.
PARSED: dict[str, Template] = {
    "user_by_id": lambda v: f"SELECT id, name FROM users WHERE id = {v.num()}",
    "open_orders": lambda v: (
        f"SELECT * FROM orders WHERE customer_id = {v.num()} AND status IN ({v.texts()}) "
        f"ORDER BY created_at DESC LIMIT {v.num()}"
    ),
    "insert_event": lambda v: (
        f"INSERT INTO events (kind, payload, at) VALUES ({v.text()}, {v.text()}, {v.num()})"
    ),
    "debit": lambda v: f"UPDATE accounts SET balance = balance - {v.num()} WHERE id = {v.num()}",
    "expire_sessions": lambda v: f"DELETE FROM sessions WHERE expires_at < {v.text()}",
    "order_items": lambda v: (
        "SELECT count(*) FROM line_items li JOIN orders o ON o.id = li.order_id "
        f"WHERE o.id IN ({v.nums()})"
    ),
    "email_search": lambda v: (
        f"SELECT u.email FROM users u WHERE u.email ILIKE {v.text()} OFFSET {v.num()}"
    ),
    "frequent_logins": lambda v: (
        f"WITH recent AS (SELECT * FROM logins WHERE at > {v.text()}) "
        "SELECT user_id, count(*) FROM recent GROUP BY user_id "
        f"HAVING count(*) > {v.num()}"
    ),
    "price_range": lambda v: f"SELECT id FROM products WHERE price BETWEEN {v.num()} AND {v.num()}",
    "users_by_ids": lambda v: f"SELECT id, name FROM users WHERE team_id IN ({v.nums()})",
}

# Templates PostgreSQL cannot parse (another dialect, truncated): the regex fallback.
UNPARSEABLE: dict[str, Template] = {
    "mysql_backticks": lambda v: (
        f"SELECT `id` FROM `users` WHERE `name` = {v.text()} AND `age` > {v.num()}"
    ),
    "mysql_limit": lambda v: (
        f"SELECT id FROM orders WHERE status IN ({v.texts()}) LIMIT {v.num()}, {v.num()}"
    ),
    "truncated": lambda v: (
        f"SELECT id FROM payments WHERE amount > {v.num()} AND currency IN ({v.texts()}) AND ("
    ),
}


def vary(sql: str, rng: random.Random) -> str:
    """The same statement as different clients and ORMs send it."""
    if rng.random() < 0.5:
        sql = sql.replace(" FROM ", "\n  FROM ").replace(" WHERE ", "\n\tWHERE   ")
    if rng.random() < 0.3:
        for word in ("SELECT", "FROM", "WHERE", "AND", "IN", "ORDER BY", "LIMIT"):
            sql = sql.replace(f"{word} ", f"{word.lower()} ")
    comment = rng.choice(
        ["", "/* app=web,route=/users */ ", "-- from the job runner\n", "/* a\nmultiline */ "]
    )
    trailer = rng.choice(["", " -- trailing, it's here", " /* trace=abc123 */", ";", "  \n"])
    if sql.endswith("("):  # a truncated statement ends where it was cut
        trailer = ""
    return comment + sql + trailer


def corpus(templates: dict[str, Template], seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    literals = Literals(rng)
    return {
        name: [vary(make(literals), rng) for _ in range(INSTANCES_PER_TEMPLATE)]
        for name, make in templates.items()
    }


def fingerprints_by_template(queries: dict[str, list[str]]) -> dict[str, set[Fingerprint]]:
    return {name: {fingerprint(q) for q in sqls} for name, sqls in queries.items()}


def assert_one_fingerprint_per_template(queries: dict[str, list[str]]) -> dict[str, str]:
    owners: dict[str, set[str]] = defaultdict(set)
    for name, sqls in queries.items():
        values = {fingerprint(q).value for q in sqls}
        assert len(values) == 1, f"{name} split into {len(values)} fingerprints"
        owners[values.pop()].add(name)
    shared = {fp: names for fp, names in owners.items() if len(names) > 1}
    assert not shared, f"templates share a fingerprint: {shared}"
    return {next(iter(names)): fp for fp, names in owners.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parsed_templates_have_one_fingerprint_each(seed: int) -> None:
    queries = corpus(PARSED, seed)
    assert len(PARSED) >= 8
    assert_one_fingerprint_per_template(queries)
    for name, sqls in queries.items():
        for sql in sqls:
            fp = fingerprint(sql)
            assert fp.kind is FingerprintKind.PARSED, (name, sql)
            assert fp.version == FINGERPRINT_VERSION


def test_fingerprints_are_the_same_across_corpora() -> None:
    first = assert_one_fingerprint_per_template(corpus(PARSED, 10))
    second = assert_one_fingerprint_per_template(corpus(PARSED, 11))
    assert first == second


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unparseable_sql_falls_back_to_a_stable_regex_fingerprint(seed: int) -> None:
    queries = corpus(UNPARSEABLE, seed)
    assert_one_fingerprint_per_template(queries)
    for sqls in queries.values():
        for sql in sqls:
            fp = fingerprint(sql)
            assert fp.kind is FingerprintKind.REGEX, sql
            assert fp.version == REGEX_VERSION


def test_parsed_and_regex_fingerprints_do_not_collide() -> None:
    parsed = assert_one_fingerprint_per_template(corpus(PARSED, 5))
    regex = assert_one_fingerprint_per_template(corpus(UNPARSEABLE, 5))
    assert not set(parsed.values()) & set(regex.values())


def test_display_has_no_literals_or_comments() -> None:
    fp = fingerprint("/* app=web */ SELECT id, name FROM users WHERE id = 42 -- hi")
    assert fp.display == "SELECT id, name FROM users WHERE id = $1"
    regex = fingerprint("SELECT `id` FROM `users` /* c */ WHERE `name` = 'bob' AND age IN (1, 2)")
    assert regex.kind is FingerprintKind.REGEX
    assert regex.display == "select `id` from `users` where `name` = ? and age in (?)"


def test_regex_fallback_keeps_strings_that_look_like_comments() -> None:
    a = fingerprint("SELECT `x` FROM t WHERE s = 'a--b' AND n = 1")
    b = fingerprint("SELECT `x` FROM t WHERE s = 'plain' AND n = 2")
    assert a.kind is FingerprintKind.REGEX
    assert a.value == b.value
    assert a.display.endswith("and n = ?")


def test_regex_fallback_treats_bind_parameters_and_a_final_semicolon_as_noise() -> None:
    # libpg_query's fingerprint does the same for SQL that parses.
    a = fingerprint("SELECT `x` FROM t WHERE a = $1 AND b IN ($2, $3)")
    b = fingerprint("SELECT `x` FROM t WHERE a = 7 AND b IN (1);")
    assert a.kind is b.kind is FingerprintKind.REGEX
    assert a.value == b.value
    assert a.display == "select `x` from t where a = ? and b in (?)"


def test_regex_fallback_still_tells_structures_apart() -> None:
    a = fingerprint("SELECT `x` FROM t WHERE a = 1")
    b = fingerprint("SELECT `x` FROM t WHERE b = 1")
    c = fingerprint("SELECT `x` FROM u WHERE a = 1")
    assert len({a.value, b.value, c.value}) == 3


def test_long_display_is_bounded() -> None:
    sql = "SELECT " + ", ".join(f"column_{i}" for i in range(2000)) + " FROM t"
    assert len(fingerprint(sql).display) == 4000
