"""Time intervals: every set field must match, in the spec's location."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from alert_engine.core.timeintervals import TimeIntervalError, parse_time_interval


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> float:
    """Epoch seconds of a UTC wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def interval(**spec: Any) -> Any:
    return parse_time_interval("t", [spec])


def test_times_start_inclusive_end_exclusive() -> None:
    ti = interval(times=[{"start_time": "09:00", "end_time": "17:00"}])
    assert not ti.contains(at(2024, 1, 1, 8, 59))
    assert ti.contains(at(2024, 1, 1, 9, 0))
    assert ti.contains(at(2024, 1, 1, 16, 59))
    assert not ti.contains(at(2024, 1, 1, 17, 0))
    # seconds within the last minute still count
    assert ti.contains(at(2024, 1, 1, 16, 59) + 59.9)


def test_times_up_to_midnight_and_several_ranges() -> None:
    ti = interval(
        times=[
            {"start_time": "00:00", "end_time": "01:00"},
            {"start_time": "23:00", "end_time": "24:00"},
        ]
    )
    assert ti.contains(at(2024, 1, 1, 0, 0))
    assert ti.contains(at(2024, 1, 1, 23, 59))
    assert not ti.contains(at(2024, 1, 1, 1, 0))
    assert not ti.contains(at(2024, 1, 1, 22, 59))


def test_weekday_ranges() -> None:
    ti = interval(weekdays=["monday:friday"])
    # 2024-01-01 is a Monday
    assert [ti.contains(at(2024, 1, d)) for d in range(1, 8)] == [True] * 5 + [False] * 2
    weekend = interval(weekdays=["Saturday", "sunday"])
    assert [weekend.contains(at(2024, 1, d)) for d in range(1, 8)] == [False] * 5 + [True] * 2
    single = interval(weekdays=["wednesday"])
    assert single.contains(at(2024, 1, 3))
    assert not single.contains(at(2024, 1, 4))


def test_the_week_begins_on_sunday() -> None:
    # As in Alertmanager: "sunday:saturday" is the whole week, "monday:sunday" is backwards.
    whole = interval(weekdays=["sunday:saturday"])
    assert all(whole.contains(at(2024, 1, d)) for d in range(1, 8))
    sun_to_tue = interval(weekdays=["sunday:tuesday"])
    # 2024-01-07 is a Sunday
    assert [sun_to_tue.contains(at(2024, 1, d)) for d in range(1, 8)] == [
        True,
        True,
        False,
        False,
        False,
        False,
        True,
    ]


def test_days_of_month_positive_ranges() -> None:
    ti = interval(days_of_month=["1:5", "15"])
    assert ti.contains(at(2024, 3, 1))
    assert ti.contains(at(2024, 3, 5))
    assert not ti.contains(at(2024, 3, 6))
    assert ti.contains(at(2024, 3, 15))
    assert not ti.contains(at(2024, 3, 16))


def test_last_day_of_month_in_leap_and_non_leap_february() -> None:
    last = interval(days_of_month=["-1"])
    assert last.contains(at(2024, 2, 29))
    assert not last.contains(at(2024, 2, 28))
    assert last.contains(at(2023, 2, 28))
    assert not last.contains(at(2023, 2, 27))
    assert last.contains(at(2024, 4, 30))
    assert last.contains(at(2024, 1, 31))
    assert not last.contains(at(2024, 1, 30))


def test_negative_day_ranges() -> None:
    last_three = interval(days_of_month=["-3:-1"])
    assert [last_three.contains(at(2023, 2, d)) for d in (25, 26, 27, 28)] == [
        False,
        True,
        True,
        True,
    ]
    assert [last_three.contains(at(2024, 2, d)) for d in (26, 27, 28, 29)] == [
        False,
        True,
        True,
        True,
    ]
    # from the 20th to the last day, whatever the month's length
    tail = interval(days_of_month=["20:-1"])
    assert tail.contains(at(2023, 2, 28))
    assert tail.contains(at(2024, 1, 31))
    assert not tail.contains(at(2024, 1, 19))
    # -31 in a 28-day month is clamped to the first day
    assert interval(days_of_month=["-31:-28"]).contains(at(2023, 2, 1))


def test_months_by_name_and_number() -> None:
    ti = interval(months=["january:march", "11", "December"])
    wanted = {1, 2, 3, 11, 12}
    assert {m for m in range(1, 13) if ti.contains(at(2024, m, 10))} == wanted
    assert {m for m in range(1, 13) if interval(months=["4:6"]).contains(at(2024, m, 10))} == {
        4,
        5,
        6,
    }


def test_years() -> None:
    ti = interval(years=["2023:2024", "2030"])
    assert not ti.contains(at(2022, 12, 31, 23, 59))
    assert ti.contains(at(2023, 1, 1, 0, 0))
    assert ti.contains(at(2024, 12, 31))
    assert not ti.contains(at(2025, 1, 1))
    assert ti.contains(at(2030, 6, 1))


def test_every_field_must_match_and_any_spec_may() -> None:
    office = {
        "weekdays": ["monday:friday"],
        "times": [{"start_time": "09:00", "end_time": "17:00"}],
    }
    ti = parse_time_interval("t", [office, {"days_of_month": ["25"], "months": ["december"]}])
    assert ti.contains(at(2024, 1, 2, 10))  # Tuesday 10:00
    assert not ti.contains(at(2024, 1, 2, 18))  # Tuesday 18:00
    assert not ti.contains(at(2024, 1, 6, 10))  # Saturday 10:00
    assert ti.contains(at(2021, 12, 25, 3))  # Saturday, Christmas: the second spec
    assert not ti.contains(at(2021, 11, 25, 3))


def test_an_empty_spec_matches_always_and_no_spec_never() -> None:
    assert interval().contains(at(2024, 5, 5))
    assert not parse_time_interval("t", []).contains(at(2024, 5, 5))


def test_location_across_a_dst_change() -> None:
    # Europe/Berlin moves from UTC+1 to UTC+2 on 2024-03-31 at 01:00 UTC.
    ti = interval(times=[{"start_time": "09:00", "end_time": "10:00"}], location="Europe/Berlin")
    assert ti.contains(at(2024, 3, 30, 8, 30))  # 09:30 CET
    assert not ti.contains(at(2024, 3, 30, 7, 30))  # 08:30 CET
    assert ti.contains(at(2024, 3, 31, 7, 30))  # 09:30 CEST
    assert not ti.contains(at(2024, 3, 31, 8, 30))  # 10:30 CEST
    utc = interval(times=[{"start_time": "09:00", "end_time": "10:00"}])
    assert not utc.contains(at(2024, 3, 31, 7, 30))
    assert utc.contains(at(2024, 3, 31, 9, 30))


def test_location_decides_the_day_too() -> None:
    # 2024-01-31 23:30 UTC is already 1 February in Berlin.
    moment = at(2024, 1, 31, 23, 30)
    assert interval(days_of_month=["-1"]).contains(moment)
    assert not interval(days_of_month=["-1"], location="Europe/Berlin").contains(moment)
    assert interval(days_of_month=["1"], location="Europe/Berlin").contains(moment)
    # Wednesday in UTC, Thursday in Berlin
    assert interval(weekdays=["thursday"], location="Europe/Berlin").contains(moment)
    assert not interval(weekdays=["thursday"]).contains(moment)
    assert interval(years=["2024"], months=["february"], location="Europe/Berlin").contains(
        at(2024, 1, 31, 23, 30)
    )


def test_local_and_utc_locations() -> None:
    assert interval(location="UTC").specs[0].location == "UTC"
    assert interval(location="Local").specs[0].location == "UTC"
    assert interval().specs[0].location == "UTC"


@pytest.mark.parametrize(
    "spec",
    [
        {"times": [{"start_time": "25:00", "end_time": "26:00"}]},
        {"times": [{"start_time": "09:60", "end_time": "10:00"}]},
        {"times": [{"start_time": "10:-5", "end_time": "11:00"}]},
        {"times": [{"start_time": "nine", "end_time": "10:00"}]},
        {"times": [{"start_time": "10:00", "end_time": "09:00"}]},
        {"times": [{"start_time": "10:00", "end_time": "10:00"}]},
        {"times": [{"start_time": "10:00"}]},
        {"times": [{"start_time": "23:00", "end_time": "24:01"}]},
        {"times": "09:00-10:00"},
        {"weekdays": ["funday"]},
        {"weekdays": ["friday:monday"]},
        {"weekdays": ["monday:sunday"]},
        {"weekdays": ["1:3"]},
        {"weekdays": ["0"]},
        {"days_of_month": ["0"]},
        {"days_of_month": ["32"]},
        {"days_of_month": ["-32"]},
        {"days_of_month": ["10:5"]},
        {"days_of_month": ["-1:-3"]},
        {"days_of_month": ["-5:5"]},
        {"months": ["13"]},
        {"months": ["jan"]},
        {"months": ["march:january"]},
        {"years": ["0"]},
        {"years": ["2025:2024"]},
        {"location": "Mars/Olympus"},
        {"weekday": ["monday"]},
    ],
)
def test_errors(spec: dict[str, Any]) -> None:
    with pytest.raises(TimeIntervalError):
        parse_time_interval("t", [spec])
