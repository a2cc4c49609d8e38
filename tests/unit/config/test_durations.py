import pendulum
import pytest

from moonflower.config.durations import parse_period

START = pendulum.datetime(2026, 1, 31, 12, 0, 0, tz="UTC")


@pytest.mark.parametrize(
    ("text", "expected_end"),
    [
        ("30 days", "2026-03-02T12:00:00+00:00"),
        ("2 weeks", "2026-02-14T12:00:00+00:00"),
        ("1 month", "2026-02-28T12:00:00+00:00"),
        ("a month", "2026-02-28T12:00:00+00:00"),
        ("1 year", "2027-01-31T12:00:00+00:00"),
        ("12 hours", "2026-02-01T00:00:00+00:00"),
        ("90 minutes", "2026-01-31T13:30:00+00:00"),
        ("3 seconds", "2026-01-31T12:00:03+00:00"),
        ("an hour", "2026-01-31T13:00:00+00:00"),
        ("1 month 2 weeks", "2026-03-14T12:00:00+00:00"),
        ("1 month and 2 weeks", "2026-03-14T12:00:00+00:00"),
        ("1 month, 2 weeks", "2026-03-14T12:00:00+00:00"),
        ("1 Day", "2026-02-01T12:00:00+00:00"),
        ("30d", "2026-03-02T12:00:00+00:00"),
        ("12h", "2026-02-01T00:00:00+00:00"),
        ("90 min", "2026-01-31T13:30:00+00:00"),
        ("2w", "2026-02-14T12:00:00+00:00"),
        ("1y", "2027-01-31T12:00:00+00:00"),
        ("P30D", "2026-03-02T12:00:00+00:00"),
        ("P1M", "2026-02-28T12:00:00+00:00"),
        ("PT12H", "2026-02-01T00:00:00+00:00"),
        ("P1Y2M3DT4H5M6S", "2027-04-03T16:05:06+00:00"),
        ("P2W", "2026-02-14T12:00:00+00:00"),
    ],
)
def test_accepted_durations(text: str, expected_end: str) -> None:
    assert parse_period(text).after(START).isoformat() == expected_end


@pytest.mark.parametrize(
    "text",
    [
        "next monday",
        "soon",
        "0 days",
        "-1 day",
        "",
        "   ",
        "P",
        "PT",
        "P0D",
        "1.5 days",
        "30",
        "days",
        "1 fortnight",
        "1 m",
        "tomorrow",
        "1 day ago",
        "P1DT",
    ],
)
def test_rejected_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r'"30 days"'):
        parse_period(text)


def test_leap_day_plus_a_year_is_the_last_day_of_february() -> None:
    leap_day = pendulum.datetime(2024, 2, 29, tz="UTC")

    assert parse_period("1 year").after(leap_day).to_date_string() == "2025-02-28"
