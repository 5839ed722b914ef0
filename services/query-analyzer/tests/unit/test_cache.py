"""The fingerprint cache never changes a fingerprint: cached == computed, on the corpus
and on text built to trip a careless pre-normalisation."""

from __future__ import annotations

import pytest

from query_analyzer.core.cache import FingerprintCache, cache_key
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
