"""``GET /api/v1/series`` matchers: parsed in linear time, with the grammar they always had.

The matchers arrive without a token, so parsing them must not cost more than reading
them: the earlier pattern (``OLD_PATTERN`` below, kept as the reference for the grammar)
was cubic in runs of whitespace. Slow inputs are bounded by the pytest timeout; no
assertion here measures time.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_ingest.rollup.query import (
    MATCHER_PATTERN,
    MAX_MATCHER_LENGTH,
    MAX_MATCHERS,
    BadQuery,
    QueryError,
    parse_matcher,
    parse_query,
)

OLD_PATTERN = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(!=|=)\s*"?(.*?)"?\s*$')
DOCUMENTED = re.compile(MATCHER_PATTERN)
PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=3000)

# Short texts over the characters the grammar cares about (the old pattern is only fast
# enough to be the reference on short ones).
_texts = st.text(alphabet=' \t\n\v\r\x1c\u00a0\u2028"=!aZ_9x-', max_size=14)


def _old(text: str) -> tuple[str, str, str] | None:
    match = None if "\x00" in text else OLD_PATTERN.match(text)
    return None if match is None else (match.group(1), match.group(2), match.group(3))


def _new(text: str) -> tuple[str, str, str] | None:
    try:
        return parse_matcher(text)
    except BadQuery as exc:
        if exc.reason is not QueryError.BAD_MATCHER:
            raise
        return None


@PROPERTY
@given(_texts)
def test_the_parser_reads_every_matcher_as_the_old_pattern_did(text: str) -> None:
    assert _new(text) == _old(text)


@PROPERTY
@given(_texts)
def test_the_documented_pattern_accepts_what_the_parser_accepts(text: str) -> None:
    # JSON Schema's "pattern" is a search; the document's pattern is anchored.
    assert (DOCUMENTED.search(text) is not None) == (_new(text) is not None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('host="a"', ("host", "=", "a")),
        ("env!=prod", ("env", "!=", "prod")),
        ('  job = " a b "  ', ("job", "=", " a b ")),
        ('x=a"b"', ("x", "=", 'a"b')),
        ('x=""', ("x", "=", "")),
        ('x="', ("x", "=", "")),
        ("x=\n  v \n", ("x", "=", "v")),
    ],
)
def test_matchers(text: str, expected: tuple[str, str, str]) -> None:
    assert parse_matcher(text) == expected


@pytest.mark.parametrize(
    "text",
    ["host~a", "=a", "1a=b", 'a="x\ny"', "a=x\x00", "a=" + "v" * MAX_MATCHER_LENGTH],
)
def test_bad_matchers_are_refused_with_their_reason(text: str) -> None:
    with pytest.raises(BadQuery) as caught:
        parse_matcher(text)
    assert caught.value.reason is QueryError.BAD_MATCHER
    assert len(caught.value.detail) < 300, "the detail does not echo a long matcher"


# Cubic for the old pattern: every split of the whitespace run is tried, and each try
# re-scans what follows (2,000 spaces: 20 s; the longest allowed: minutes).
_SLOW = [
    "a=" + " " * (MAX_MATCHER_LENGTH - 5) + "x\nx",
    "a=" + " " * (MAX_MATCHER_LENGTH - 7) + '\n"x\nx',
    "a=x" + " " * (MAX_MATCHER_LENGTH - 5) + "\nx",
    "a=" + " \t" * (MAX_MATCHER_LENGTH // 2 - 3) + "x\ny",
    "a=" + ('"' + " " * 30) * (MAX_MATCHER_LENGTH // 31 - 1) + "\nx",
    " " * (MAX_MATCHER_LENGTH - 2) + "a!",
]


@pytest.mark.parametrize("text", _SLOW)
def test_hostile_matchers_are_parsed_in_linear_time(text: str) -> None:
    assert len(text) <= MAX_MATCHER_LENGTH
    with pytest.raises(BadQuery):
        parse_matcher(text)
    # A client validating against the document with a backtracking engine is safe too.
    assert DOCUMENTED.search(text) is None
    long_ok = "a=" + " " * (MAX_MATCHER_LENGTH - 4) + "x"
    assert DOCUMENTED.search(long_ok) is not None
    assert parse_matcher(long_ok) == ("a", "=", "x")


def test_a_query_with_every_matcher_hostile_is_refused() -> None:
    with pytest.raises(BadQuery) as caught:
        parse_query({"name": "cpu"}, [_SLOW[0]] * MAX_MATCHERS, now=1e9, window_sizes=(10.0,))
    assert caught.value.reason is QueryError.BAD_MATCHER
