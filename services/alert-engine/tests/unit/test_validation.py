"""The input validators: text PostgreSQL can store, label sets within the events' limits,
times every formatter prints; with property tests of the label and time validators."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alert_engine.core import validation
from alert_engine.core.validation import (
    END_EPOCH,
    MAX_LABEL_NAME,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    InvalidInput,
    TextProblem,
    check_annotations,
    check_epoch,
    check_labels,
    check_text,
    clamp_epoch,
    epoch_of,
    find_unstorable,
    rfc3339,
    storable,
    text_problem,
)
from opsmesh.events.base import Labels

# Deterministic: the same examples on every run (no database of past failures either).
PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=400)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("plain", None),
        ("é ü 日本 🚀", None),
        ("tab\tand\nnewline\x01", None),  # other control characters store fine
        ("a\x00b", TextProblem.NUL),
        ("\x00", TextProblem.NUL),
        ("a\ud800b", TextProblem.LONE_SURROGATE),
        ("\udfff", TextProblem.LONE_SURROGATE),
        ("é\udc80", TextProblem.LONE_SURROGATE),
    ],
)
def test_text_problem(text: str, problem: TextProblem | None) -> None:
    assert text_problem(text) is problem


def test_length_is_a_problem_only_with_a_limit() -> None:
    assert text_problem("x" * 5) is None
    assert text_problem("x" * 5, 5) is None
    assert text_problem("x" * 6, 5) is TextProblem.TOO_LONG
    with pytest.raises(InvalidInput, match=r"^comment: is longer than 5 characters$"):
        check_text("comment", "x" * 6, 5)
    with pytest.raises(InvalidInput, match=r"^createdBy: contains a NUL") as raised:
        check_text("createdBy", "me\x00")
    assert raised.value.field == "createdBy"


def test_storable_replaces_what_cannot_be_stored() -> None:
    assert storable("fine") == "fine"
    assert storable("a\x00b\ud800c") == "a\ufffdb\ufffdc"
    assert text_problem(storable("\x00\udfff" * 3)) is None


def test_the_limits_are_the_events() -> None:
    """An alert the API accepts must be one the notifier decodes (Labels on the wire)."""
    info = msgspec.inspect.type_info(Labels)
    assert isinstance(info, msgspec.inspect.DictType)
    assert info.max_length == MAX_LABELS
    assert isinstance(info.key_type, msgspec.inspect.StrType)
    assert isinstance(info.value_type, msgspec.inspect.StrType)
    assert info.key_type.max_length == MAX_LABEL_NAME
    assert info.value_type.max_length == MAX_LABEL_VALUE


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"bad-name": "x"}, r"^labels: invalid label name 'bad-name'$"),
        ({"1st": "x"}, "invalid label name"),
        ({"": "x"}, "invalid label name"),
        ({"a\x00": "x"}, r"invalid label name 'a\\x00'"),
        ({"n" * (MAX_LABEL_NAME + 1): "x"}, "invalid label name"),
        ({"empty": ""}, r"^labels\.empty: label 'empty' has an empty value$"),
        ({"team": "db\x00"}, r"^labels\.team: contains a NUL character"),
        ({"team": "\ud800"}, r"^labels\.team: contains a lone UTF-16 surrogate"),
        ({"long": "x" * (MAX_LABEL_VALUE + 1)}, r"^labels\.long: is longer than 1024"),
        ({f"l{i}": "x" for i in range(MAX_LABELS + 1)}, "more than 64 labels"),
    ],
)
def test_invalid_labels_name_the_field(labels: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_labels("labels", labels)


def test_valid_labels_at_the_limits() -> None:
    check_labels(
        "labels",
        {"n" * MAX_LABEL_NAME: "v" * MAX_LABEL_VALUE}
        | {f"l{i}": "é" for i in range(MAX_LABELS - 1)},
    )


def test_annotations_are_loose_but_storable() -> None:
    check_annotations("annotations", {"Runbook URL": "", "summary-text": "x" * 4096})
    with pytest.raises(InvalidInput, match=r"^annotations\.summary: contains a NUL"):
        check_annotations("annotations", {"summary": "\x00"})
    with pytest.raises(InvalidInput, match=r"^annotations name '\\udc00': contains a lone"):
        check_annotations("annotations", {"\udc00": "x"})
    with pytest.raises(InvalidInput, match="longer than 4096"):
        check_annotations("annotations", {"summary": "x" * 4097})


# -- times ---------------------------------------------------------------------------


def test_epoch_of_accepts_years_1970_to_9999_in_utc() -> None:
    assert epoch_of("startsAt", datetime(1970, 1, 1, tzinfo=UTC)) == 0.0
    assert epoch_of("startsAt", datetime(2023, 11, 14, 22, 13, 20)) == 1_700_000_000.0  # naive
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert epoch_of("endsAt", last) < END_EPOCH
    plus_two = timezone(timedelta(hours=2))
    assert epoch_of("endsAt", datetime(10000 - 1, 12, 31, 23, 0, tzinfo=plus_two)) < END_EPOCH


@pytest.mark.parametrize(
    "stamp",
    [
        # The case: year 9999 locally, year 10000 in UTC.
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59))),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # 1969 in UTC
        datetime(2, 1, 1, tzinfo=UTC),
    ],
)
def test_epoch_of_refuses_the_rest_naming_the_field(stamp: datetime) -> None:
    with pytest.raises(InvalidInput, match=r"^endsAt: .* is outside the accepted range") as e:
        epoch_of("endsAt", stamp)
    assert "1970-01-01T00:00:00Z..9999-12-31T23:59:59Z" in str(e.value)


@pytest.mark.parametrize("epoch", [-1.0, END_EPOCH, 1e300, float("inf"), float("nan")])
def test_check_epoch_refuses_out_of_range(epoch: float) -> None:
    with pytest.raises(InvalidInput, match=r"^alerts\[0\]\.ends_at: "):
        check_epoch("alerts[0].ends_at", epoch)


def test_rfc3339_never_fails_clamping_what_was_stored_before() -> None:
    assert rfc3339(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"
    assert rfc3339(None) == "0001-01-01T00:00:00.000Z"
    assert rfc3339(float("inf")) == "0001-01-01T00:00:00.000Z"
    assert rfc3339(253_402_387_139.0) == "9999-12-31T23:59:59.000Z"  # year 10000
    assert rfc3339(1e300) == "9999-12-31T23:59:59.000Z"
    assert rfc3339(-1e12) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(float("nan")) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(END_EPOCH - 1e-4).startswith("9999-12-31T23:59:59.99")
    assert clamp_epoch(12.5) == 12.5


def test_find_unstorable_names_the_path() -> None:
    doc = {"groups": [{"name": "g", "rules": [{"alert": "A", "labels": {"team": "a\x00"}}]}]}
    assert find_unstorable(doc) == ("groups[0].rules[0].labels.team", TextProblem.NUL)
    assert find_unstorable({"a": [{"\ud800": 1}]}) == (
        "a[0] key '\\ud800'",
        TextProblem.LONE_SURROGATE,
    )
    assert find_unstorable({"a": [1, 2.5, None, True, "ok"], "b": {"c": "é"}}) is None
    assert find_unstorable("\x00") == ("value", TextProblem.NUL)


# -- properties ----------------------------------------------------------------------


def _repeated(low: int, high: int, alphabet: str) -> st.SearchStrategy[str]:
    """Long strings around a limit, cheap to generate."""
    return st.builds(lambda n, c: c * n, st.integers(low, high), st.sampled_from(alphabet))


_names = st.one_of(
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True),
    st.text(max_size=12),
    _repeated(99, 102, "a_"),
)
_values = st.one_of(
    st.text(max_size=30),
    _repeated(1020, 1030, "xé"),
    st.sampled_from(["", "\x00", "\ud800", "a\udfffb", "ok"]),
)


@PROPERTY
@given(st.dictionaries(_names, _values, max_size=70))
def test_property_accepted_labels_are_storable_and_on_the_wire(labels: dict[str, str]) -> None:
    refused: InvalidInput | None = None
    try:
        check_labels("labels", labels)
    except InvalidInput as exc:
        refused = exc
    if refused is not None:
        assert refused.field.startswith("labels")
        assert refused.reason
        return
    # Accepted: PostgreSQL can store it (UTF-8, no NUL escape) and the notifier's decoder
    # (Labels) takes it.
    encoded = json.dumps(labels).encode("utf-8")
    assert b"\\u0000" not in encoded
    assert all(v for v in labels.values())
    msgspec.json.decode(msgspec.json.encode(labels), type=Labels)


_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_stamps = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.one_of(st.none(), _offsets),
)


@PROPERTY
@given(_stamps)
def test_property_accepted_times_print_and_parse_back(stamp: datetime) -> None:
    text = stamp.isoformat()
    if stamp.tzinfo is not None:
        # The path a request takes: RFC 3339 text decoded by msgspec.
        decoded = msgspec.json.decode(json.dumps(text).encode(), type=datetime)
        assert decoded == stamp
    refused: InvalidInput | None = None
    try:
        epoch = epoch_of("startsAt", stamp)
    except InvalidInput as exc:
        refused = exc
    if refused is not None:
        assert str(refused).startswith("startsAt: ")
        assert "outside the accepted range" in str(refused)
        return
    printed = rfc3339(epoch)
    again = msgspec.json.decode(json.dumps(printed).encode(), type=datetime)
    # Printing truncates to milliseconds (< 1 ms lost); a float of ~1e11 s holds about
    # 1e-5 s, so the bound allows that much rounding on top.
    assert abs(again.timestamp() - epoch) < 0.001 + 1e-4
    assert 1970 <= again.year <= 9999


@PROPERTY
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_property_any_float_prints(epoch: float) -> None:
    printed = rfc3339(epoch)
    msgspec.json.decode(json.dumps(printed).encode(), type=datetime)


def test_label_name_cache_does_not_grow_without_bound() -> None:
    for i in range(validation._VALID_NAMES_MAX + 100):
        check_labels("labels", {f"name_{i}": "x"})
    assert len(validation._VALID_NAMES) <= validation._VALID_NAMES_MAX
