"""Label matchers: parsing, the four ops, anchored regexes, missing = "" and printing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alert_engine.core.matchers import (
    Matcher,
    MatcherError,
    MatchType,
    format_matchers,
    matches_all,
    parse_matcher,
    parse_matchers,
)


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('a="b"', "a", MatchType.EQUAL, "b"),
        ("a=b", "a", MatchType.EQUAL, "b"),
        ('  a  !=  "b c"  ', "a", MatchType.NOT_EQUAL, "b c"),
        ('a=~"b|c"', "a", MatchType.REGEX, "b|c"),
        ("a!~b.*", "a", MatchType.NOT_REGEX, "b.*"),
        ('a=""', "a", MatchType.EQUAL, ""),
        ('a="x\\"y"', "a", MatchType.EQUAL, 'x"y'),
        ('a=~"\\\\d+"', "a", MatchType.REGEX, "\\d+"),
        ('a="=~"', "a", MatchType.EQUAL, "=~"),
        ('a="é, ü"', "a", MatchType.EQUAL, "é, ü"),
        ('"dotted.name"="v"', "dotted.name", MatchType.EQUAL, "v"),
        ("_x1=v", "_x1", MatchType.EQUAL, "v"),
    ],
)
def test_parse_matcher(text: str, name: str, op: MatchType, value: str) -> None:
    m = parse_matcher(text)
    assert (m.name, m.type, m.value) == (name, op, value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        'a"b"',
        '1a="b"',
        'a b="c"',
        'a="b"c',  # trailing junk after the quoted value
        'a="unterminated',
        'a=b"c',  # unquoted values may not hold quotes
        "a={x}",  # nor braces
        'a=~"("',  # invalid regex
        'a!~"[z-a]"',
    ],
)
def test_parse_matcher_rejects(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(text)


def test_invalid_regex_is_a_matcher_error_from_the_constructor_too() -> None:
    with pytest.raises(MatcherError, match="invalid regex"):
        Matcher("a", MatchType.REGEX, "a(")
    # a plain equality matcher does not care about regex syntax
    assert Matcher("a", MatchType.EQUAL, "a(").matches({"a": "a("})


def test_empty_label_name_is_rejected() -> None:
    with pytest.raises(MatcherError):
        Matcher.from_api("", "x", is_regex=False)
    with pytest.raises(MatcherError):
        parse_matcher('""="x"')


def test_parse_matchers_sets_and_lists() -> None:
    expected = [
        Matcher("a", MatchType.EQUAL, "x"),
        Matcher("b", MatchType.REGEX, "y|z"),
    ]
    assert parse_matchers('{a="x", b=~"y|z"}') == expected
    assert parse_matchers('a="x",b=~"y|z"') == expected
    assert parse_matchers('  { a = "x" , b =~ "y|z" , }  ') == expected
    assert parse_matchers("{}") == []
    assert parse_matchers("") == []


def test_commas_and_braces_inside_quotes_are_kept() -> None:
    ms = parse_matchers('{a="1,2", b="{x}", c="q\\",r"}')
    assert [(m.name, m.value) for m in ms] == [("a", "1,2"), ("b", "{x}"), ("c", 'q",r')]


@pytest.mark.parametrize("text", ['{a="x"', '{a="x}', 'a="x,b="y'])
def test_parse_matchers_rejects_unbalanced(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matchers(text)


def test_the_four_ops() -> None:
    labels = {"env": "prod", "team": "db"}
    assert Matcher("env", MatchType.EQUAL, "prod").matches(labels)
    assert not Matcher("env", MatchType.EQUAL, "dev").matches(labels)
    assert Matcher("env", MatchType.NOT_EQUAL, "dev").matches(labels)
    assert not Matcher("env", MatchType.NOT_EQUAL, "prod").matches(labels)
    assert Matcher("env", MatchType.REGEX, "pr.*").matches(labels)
    assert not Matcher("env", MatchType.REGEX, "dev|stag").matches(labels)
    assert Matcher("env", MatchType.NOT_REGEX, "dev|stag").matches(labels)
    assert not Matcher("env", MatchType.NOT_REGEX, "p.*").matches(labels)


def test_regexes_are_anchored() -> None:
    m = parse_matcher('a=~"b"')
    assert m.matches({"a": "b"})
    assert not m.matches({"a": "abc"})
    assert not m.matches({"a": "bc"})
    assert not m.matches({"a": "ab"})
    # alternation is anchored as a whole, not only its first/last branch
    alt = parse_matcher('a=~"x|y"')
    assert not alt.matches({"a": "xz"})
    assert not alt.matches({"a": "zy"})
    assert not parse_matcher('a!~"b"').matches({"a": "b"})
    assert parse_matcher('a!~"b"').matches({"a": "abc"})


def test_missing_label_is_the_empty_string() -> None:
    assert Matcher("a", MatchType.EQUAL, "").matches({})
    assert not Matcher("a", MatchType.NOT_EQUAL, "").matches({})
    assert Matcher("a", MatchType.NOT_EQUAL, "x").matches({})
    assert Matcher("a", MatchType.REGEX, "x|").matches({})
    assert not Matcher("a", MatchType.REGEX, ".+").matches({})
    assert Matcher("a", MatchType.NOT_REGEX, ".+").matches({})
    assert Matcher("a", MatchType.EQUAL, "").matches({"a": ""})


def test_matches_all_is_a_conjunction() -> None:
    ms = parse_matchers('{a="1", b!="2"}')
    assert matches_all(ms, {"a": "1", "b": "3"})
    assert not matches_all(ms, {"a": "1", "b": "2"})
    assert not matches_all(ms, {"b": "3"})
    assert matches_all([], {"anything": "x"})


@pytest.mark.parametrize(
    ("is_regex", "is_equal", "op"),
    [
        (False, True, MatchType.EQUAL),
        (False, False, MatchType.NOT_EQUAL),
        (True, True, MatchType.REGEX),
        (True, False, MatchType.NOT_REGEX),
    ],
)
def test_from_api(is_regex: bool, is_equal: bool, op: MatchType) -> None:
    m = Matcher.from_api("job", "api", is_regex, is_equal)
    assert m == Matcher("job", op, "api")
    assert m.is_regex is is_regex
    assert m.is_equal is is_equal


def test_from_api_defaults_to_equal_and_checks_the_regex() -> None:
    assert Matcher.from_api("a", "b", is_regex=True).type is MatchType.REGEX
    with pytest.raises(MatcherError):
        Matcher.from_api("a", "(", is_regex=True)


def test_str_and_format_round_trip() -> None:
    ms = [
        Matcher("a", MatchType.EQUAL, "x"),
        Matcher("b", MatchType.NOT_REGEX, 'q"\\d'),
        Matcher("c", MatchType.NOT_EQUAL, "é"),
    ]
    assert str(ms[0]) == 'a="x"'
    assert str(ms[1]) == 'b!~"q\\"\\\\d"'
    assert str(ms[2]) == 'c!="é"'
    text = format_matchers(ms)
    assert text == '{a="x",b!~"q\\"\\\\d",c!="é"}'
    assert parse_matchers(text) == ms
    assert format_matchers([]) == "{}"


def test_names_that_need_quotes_are_printed_quoted() -> None:
    ms = parse_matchers('{"dotted.name"="v", "with space"!~"x", plain="y"}')
    text = format_matchers(ms)
    assert text == '{"dotted.name"="v","with space"!~"x",plain="y"}'
    assert parse_matchers(text) == ms
    assert str(Matcher("ünï", MatchType.EQUAL, "v")) == '"ünï"="v"'


def test_equality_ignores_the_compiled_pattern() -> None:
    assert parse_matcher('a=~"b"') == Matcher("a", MatchType.REGEX, "b")
    assert hash(parse_matcher('a=~"b"')) == hash(Matcher("a", MatchType.REGEX, "b"))
    assert parse_matcher('a=~"b"') != parse_matcher('a="b"')


# -- hostile input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('a="x\\u0000"', "NUL"),
        ('"a\\u0000"="x"', "NUL"),
        (
            'a=~"(a)\\\\1"',
            r"invalid regex in a=~'\(a\)\\\\1': error parsing regexp: invalid escape",
        ),
        ('a=~"(?=x)"', "invalid or unsupported Perl syntax"),
        ("a=~" + "x" * 4097, "longer than 4096"),
    ],
)
def test_hostile_matchers_are_matcher_errors(text: str, message: str) -> None:
    with pytest.raises(MatcherError, match=message):
        parse_matcher(text)


def test_a_long_run_of_spaces_parses_in_linear_time() -> None:
    """The grammar's old lazy ``(.*?)\\s*$`` took ~0.7 s on this (and grew quadratically)."""
    with pytest.raises(MatcherError):
        parse_matchers("a=x" + " " * 100_000 + '"')
    assert parse_matcher("a=x" + " " * 100_000).value == "x"


def test_a_catastrophic_regex_matcher_runs_in_linear_time() -> None:
    m = parse_matcher('job=~"(a*)*b"')
    assert not m.matches({"job": "a" * 100_000})
    assert m.matches({"job": "a" * 1000 + "b"})


# -- property: parse → str → parse --------------------------------------------------

PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=200)
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
_names = st.one_of(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True), _text)
_regex_values = st.sampled_from(["a|b", ".*", "x+", "(?:é|\\n)?", '[^"]*', "\\{\\}", ""])


@st.composite
def _matchers(draw: st.DrawFn) -> Matcher:
    kind = draw(st.sampled_from(list(MatchType)))
    name = draw(_names.filter(bool))
    value = draw(_regex_values if kind in (MatchType.REGEX, MatchType.NOT_REGEX) else _text)
    return Matcher(name, kind, value)


@PROPERTY
@given(_matchers())
def test_property_a_matcher_prints_as_it_parses(m: Matcher) -> None:
    assert parse_matcher(str(m)) == m


@PROPERTY
@given(st.lists(_matchers(), max_size=5))
def test_property_a_set_prints_as_it_parses(ms: list[Matcher]) -> None:
    assert parse_matchers(format_matchers(ms)) == ms
