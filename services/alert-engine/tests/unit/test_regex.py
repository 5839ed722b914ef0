"""Untrusted regexes on RE2: Alertmanager's anchoring, Go's syntax and error messages,
linear time, and a property test against a reference semantics."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alert_engine.core.regex import RegexError, anchored
from alert_engine.core.validation import MAX_MATCHER_VALUE

PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=300)


# What amtool 0.25 (Debian's prometheus-alertmanager) prints for each, from
# `amtool check-config` on a route with `match_re: {a: <pattern>}`.
@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(", "error parsing regexp: missing closing ): `^(?:()$`"),
        (r"(a)\1", r"error parsing regexp: invalid escape sequence: `\1`"),
        ("(?=a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
        ("(?P=n)", "error parsing regexp: invalid or unsupported Perl syntax: `(?P`"),
        ("(?#c)", "error parsing regexp: invalid or unsupported Perl syntax: `(?#`"),
        ("(?x)a", "error parsing regexp: invalid or unsupported Perl syntax: `(?x`"),
        ("a{1001}", "error parsing regexp: invalid repeat count: `{1001}`"),
        ("(a{1000}){1000}", "error parsing regexp: invalid repeat count: `{1000}`"),
        (r"\C", r"error parsing regexp: invalid escape sequence: `\C`"),
        (r"[\C]", r"error parsing regexp: invalid escape sequence: `\C`"),
        ("[z-a]", "error parsing regexp: invalid character class range: `z-a`"),
        ("a**", "error parsing regexp: invalid nested repetition operator: `**`"),
        ("a{2}{3}", "error parsing regexp: invalid nested repetition operator: `{2}{3}`"),
        (r"\Z", r"error parsing regexp: invalid escape sequence: `\Z`"),
        (r"\e", r"error parsing regexp: invalid escape sequence: `\e`"),
        (r"[a-\d]", r"error parsing regexp: invalid escape sequence: `\d`"),
        ("x\\", r"error parsing regexp: missing closing ): `^(?:x\)$`"),
        (
            "(" * 999 + "a" + ")" * 999,
            "error parsing regexp: expression nests too deeply: `^(?:" + "(" * 999,
        ),
    ],
)
def test_refused_as_alertmanager_refuses_with_its_message(pattern: str, message: str) -> None:
    with pytest.raises(RegexError) as refused:
        anchored(pattern)
    assert str(refused.value).startswith(message)
    # Python's re accepted most of these; Alertmanager (Go) never did.


@pytest.mark.parametrize(
    "pattern",
    [
        "(a*)*b",
        "(?i)ab",
        r"\pL+",
        r"\p{Greek}",
        "[[:alpha:]]+",
        "[]a]",
        "[^]a]",
        r"\Qa.b\C\E",  # \C quoted is a literal
        "(?P<n>a)",
        "(?<n>a)",  # Go 1.22+
        "a{,3}",
        "(" * 998 + "a" + ")" * 998,
        r"\x{10FFFF}",
    ],
)
def test_accepted_as_alertmanager_accepts(pattern: str) -> None:
    anchored(pattern)


def test_too_large_and_too_long() -> None:
    with pytest.raises(RegexError, match="expression too large"):
        anchored(r"\pL{1000}" * 8)
    with pytest.raises(RegexError, match="longer than 4096"):
        anchored("a" * (MAX_MATCHER_VALUE + 1))
    with pytest.raises(RegexError, match="NUL"):
        anchored("a\x00")


def test_catastrophic_pattern_over_a_long_label_finishes() -> None:
    """(a*)*b against 100k a's: exponential for a backtracking engine, linear for RE2
    (the pytest timeout is the bound)."""
    matches = anchored("(a*)*b")
    assert not matches("a" * 100_000)
    assert matches("a" * 100_000 + "b")
    assert not anchored("(x+x+)+y")("x" * 50_000)
    assert not anchored("(.*a){20}")("a" * 5_000 + "!")


def test_alertmanager_anchoring() -> None:
    assert anchored("b")("b")
    assert not anchored("b")("abc")
    assert not anchored("x|y")("xz")
    assert not anchored("x|y")("zy")
    # Alertmanager compiles "^(?:" + v + ")$" and searches: a value that closes the group
    # itself escapes the anchoring the same way there.
    assert anchored("a)|(b")("ax")
    assert anchored("a)|(b")("xb")
    assert not anchored("a)|(b")("x")


def test_dot_matches_newline_and_code_points() -> None:
    assert anchored("a.b")("a\nb")
    assert anchored("a.b")("aéb")
    assert anchored(".")("🚀")
    assert not anchored("..")("🚀")


def test_literals_and_alternations_of_literals() -> None:
    assert anchored("prod")("prod")
    assert not anchored("prod")("production")
    api_or_web = anchored("api|web|")
    assert api_or_web("api")
    assert api_or_web("")
    assert not api_or_web("api|web")
    assert anchored("a b-c/d:e@f")("a b-c/d:e@f")


# -- property: RE2 anchored == Python's fullmatch of (?s:v) on a common subset ---------

_atoms = st.sampled_from(["a", "b", "é", "\n", ".", "[ab]", "[^a]", r"\d", "1", "(?:a|b)"])


def _regexes() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        quantified = st.tuples(inner, st.sampled_from(["", "*", "+", "?", "{1,2}", "*?"])).map(
            lambda t: f"(?:{t[0]}){t[1]}" if t[1] else t[0]
        )
        return st.one_of(
            st.lists(quantified, min_size=1, max_size=4).map("".join),
            st.lists(quantified, min_size=2, max_size=3).map("|".join),
            inner.map(lambda r: f"({r})"),
        )

    return st.recursive(_atoms, extend, max_leaves=8)


@PROPERTY
@given(_regexes(), st.lists(st.text(alphabet="abé\n1", max_size=8), min_size=1, max_size=8))
def test_property_anchoring_equals_the_reference(pattern: str, texts: list[str]) -> None:
    matches = anchored(pattern)
    reference = re.compile(f"(?s:{pattern})")
    for text in texts:
        assert matches(text) is (reference.fullmatch(text) is not None), (pattern, text)


def test_remembered_answers_stay_right_past_the_bound() -> None:
    matches = anchored("web-[0-9]+")
    for i in range(2_000):  # more values than a pattern remembers
        assert matches(f"web-{i}")
        assert not matches(f"web-{i}x")
    assert matches("web-1")
    assert not matches("web-" + "1" * 100 + "x")  # long texts are not remembered
