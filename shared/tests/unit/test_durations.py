"""Prometheus-style durations: parsing, formatting and the errors a rule author sees."""

from __future__ import annotations

import pytest

from opsmesh.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1y", 31536000.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("1m500ms", 60.5),
        ("  30s  ", 30.0),
    ],
)
def test_parse_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("number", "seconds"), [(0, 0.0), (45, 45.0), (2.5, 2.5)])
def test_plain_numbers_are_seconds(number: float, seconds: float) -> None:
    assert parse_duration(number) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "5", "m", "5x", "1h 30m", "30s!", "-5s", "s30"])
def test_invalid_text_names_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="empty duration"):
        parse_duration(text)


@pytest.mark.parametrize("number", [-1, -0.5])
def test_negative_numbers_are_rejected(number: float) -> None:
    with pytest.raises(ValueError, match="negative duration"):
        parse_duration(number)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400 + 3661, "1d1h1m1s"),
        (0.25, "250ms"),
        (1.5, "1s500ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 0.5, 1, 59, 61, 3599, 3600, 86399, 86401, 93784.25])
def test_format_then_parse_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
