"""The fingerprint cache never changes a fingerprint: cached == computed, on the corpus
and on text built to trip a careless pre-normalisation."""

from __future__ import annotations

import random

import pytest

from query_analyzer.core.cache import FingerprintCache, cache_key, shape_key
from query_analyzer.core.fingerprint import Fingerprint, fingerprint

from .test_fingerprint import PARSED, UNPARSEABLE, corpus


def _identity(fp: Fingerprint) -> tuple[str, str, str]:
    return (fp.value, fp.kind.value, fp.version)


@pytest.mark.parametrize("seed", [1, 2])
def test_cached_fingerprints_equal_computed_ones_on_the_corpus(seed: int) -> None:
    cache = FingerprintCache()
    for templates in (PARSED, UNPARSEABLE):
        for sqls in corpus(templates, seed).values():
            for sql in sqls:
                assert _identity(cache.get(sql)) == _identity(fingerprint(sql)), sql
    assert cache.hits > 0


TRAPS = [
    ("SELECT * FROM t1 WHERE a = 1", "SELECT * FROM t2 WHERE a = 1"),
    ('SELECT "col 1" FROM t', 'SELECT "col 2" FROM t'),
    ("SELECT * FROM t WHERE a = 1 -- it's\n AND b = 2", "SELECT * FROM t WHERE a = 1"),
    ("SELECT 'a -- b' FROM t WHERE x = 1", "SELECT 'a ' FROM t WHERE x = 1"),
    ("FETCH 5 FROM c", "FETCH 10 FROM c"),
    ("ALTER SEQUENCE s RESTART 5", "ALTER SEQUENCE s RESTART 7"),
    ("SELECT E'it\\'s' FROM t WHERE a = 1 OR b = 2", "SELECT E'it\\'s' FROM t WHERE a = 1"),
    ("SELECT $$a$$ FROM t WHERE a = 1", "SELECT $$b$$ FROM t WHERE b = 1"),
    ("SELECT col_1 FROM t", "SELECT col_2 FROM t"),
    # Found by the random texts below: a negated number is a constant, a negated string
    # an expression; ``.5`` is a number, ``.''`` is not; a comment separates words; an
    # exponent's digits are part of its number.
    ("SELECT -5", "SELECT -'5'"),
    ("SELECT .5 FROM t", "SELECT .'' FROM t"),
    ("SELECT t1/**/x FROM t", "SELECT t1x FROM t"),
    ("SELECT 3.00012.1e5", "SELECT 000127.1e5"),
    ("SELECT 1e-1.5", "SELECT 1e-123"),
]


@pytest.mark.parametrize(("a", "b"), TRAPS)
def test_keys_never_merge_different_fingerprints(a: str, b: str) -> None:
    cache = FingerprintCache()
    assert _identity(cache.get(a)) == _identity(fingerprint(a))
    assert _identity(cache.get(b)) == _identity(fingerprint(b))
    if fingerprint(a).value != fingerprint(b).value:
        assert cache_key(a) != cache_key(b)


def test_literal_variants_share_a_key_and_the_cache_is_bounded() -> None:
    assert cache_key("SELECT * FROM t WHERE a = 1 AND s = 'x'") == cache_key(
        "/* app */SELECT * FROM t WHERE a = 22 AND s = 'yy'-- c"
    )
    cache = FingerprintCache(max_entries=3)
    for i in range(10):
        cache.get(f"SELECT c{i} FROM t")
    assert cache.misses == 10


# The shape lookup (text outside strings, digit runs collapsed) answers for a text seen
# after another of its shape: these pairs are built so that a careless shape would hand
# the second text the first one's fingerprint.
SHAPE_TRAPS = [
    ("SELECT 'a' FROM t WHERE x = 1", "SELECT 'a' FROM t WHERE x = 1'"),  # unterminated
    ("SELECT a1 FROM t WHERE x = 1", "SELECT a22 FROM t WHERE x = 1"),
    ("SELECT x FROM t WHERE a = $1 AND b = 5", "SELECT x FROM t WHERE a = $12 AND b = 6"),
    ("SELECT 1e5 FROM t WHERE b = 1", "SELECT 2e57 FROM t WHERE b = 2"),
    ("SELECT 0x1F FROM t", "SELECT 0x2G FROM t"),
    (
        "SELECT * FROM t WHERE a = 1 /* it's */ AND b = 'x'",
        "SELECT * FROM t WHERE a = 2 /* it's */ AND b = 'y' OR c = 'z'",
    ),
    (
        "SELECT * FROM t WHERE a = 1 -- it's\n AND b = 'x'",
        "SELECT * FROM t WHERE a = 1 -- it's\n AND b = 'x' OR ''",
    ),
    ("SELECT 'x' FROM t WHERE a = 1", "SELECT 'x\\' FROM t WHERE a = 1 OR \\'"),
    ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = 12345678901234567890123"),
    ("SELECT * FROM t WHERE a = 1.5", "SELECT * FROM t WHERE a = 12.25"),
    ("SELECT * FROM t WHERE s = 'a'", "SELECT * FROM t WHERE s = 'a--b'"),
    ("SELECT * FROM tab WHERE s = 'é1'", "SELECT * FROM tab WHERE s = 'ü22'"),
    ("SELECT * FROM tä1 WHERE s = 1", "SELECT * FROM tä2 WHERE s = 1"),
]


@pytest.mark.parametrize(("first", "then"), SHAPE_TRAPS)
def test_a_text_of_a_seen_shape_gets_its_own_fingerprint(first: str, then: str) -> None:
    cache = FingerprintCache()
    assert _identity(cache.get(first)) == _identity(fingerprint(first))
    assert _identity(cache.get(then)) == _identity(fingerprint(then)), then


def test_literal_variants_share_a_shape() -> None:
    assert shape_key("SELECT * FROM t WHERE a = 1 AND s = 'x' LIMIT 5") == shape_key(
        "SELECT * FROM t WHERE a = 22 AND s = 'yes' LIMIT 500"
    )
    assert shape_key("SELECT * FROM t1") != shape_key("SELECT * FROM t")
    assert shape_key("SELECT 'a'") != shape_key("SELECT 'a' '")


_PIECES = [
    "SELECT ",
    " FROM t",
    " WHERE a = ",
    "{n}",
    "{n}",
    "{s}",
    "{s}",
    ", ",
    " AND b IN (",
    ")",
    " t1",
    " x_",
    "1e",
    "$",
    "$$",
    "\\",
    "E",
    '"',
    "'",
    "--",
    "/*",
    "*/",
    "\n",
    "é",
    " OR ",
    ".",
    "-",
    "(",
]
_NUMBERS = ["0", "7", "123456", "1.5", "00012", ".5", "3."]
_STRINGS = ["'x'", "''", "'it''s'", "'a--b'", "'/* c'", "'$$'", "'\\'", "'\"q\"'", "'ü'", "'5'"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_texts_and_their_literal_variants_keep_their_fingerprints(seed: int) -> None:
    rng = random.Random(seed)
    cache = FingerprintCache()
    for _ in range(1500):
        pieces = [rng.choice(_PIECES) for _ in range(rng.randint(2, 12))]
        template = ("SELECT " if rng.random() < 0.7 else "") + "".join(pieces)
        for _ in range(4):
            sql = template
            while "{n}" in sql or "{s}" in sql:
                sql = sql.replace("{n}", rng.choice(_NUMBERS), 1)
                sql = sql.replace("{s}", rng.choice(_STRINGS), 1)
            assert _identity(cache.get(sql)) == _identity(fingerprint(sql)), sql
