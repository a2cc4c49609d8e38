"""Next fire times, computed without waiting: fields, names, macros, leap days, DST."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from moonflower.config.cron import CronError, parse_cron

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def fires(expression: str, start: datetime, count: int, zone: ZoneInfo = UTC) -> list[str]:
    schedule = parse_cron(expression, zone)
    moments, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        moments.append(moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z"))
    return moments


START = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 1 * * *", ["2026-11-27 01:00:00 UTC", "2026-11-28 01:00:00 UTC"]),
        ("*/20 * * * * *", ["2026-11-26 12:00:20 UTC", "2026-11-26 12:00:40 UTC"]),
        ("30 0 9 * * *", ["2026-11-27 09:00:30 UTC", "2026-11-28 09:00:30 UTC"]),
        ("15,45 12-13 * * *", ["2026-11-26 12:15:00 UTC", "2026-11-26 12:45:00 UTC"]),
        ("0 0 * * mon-fri", ["2026-11-27 00:00:00 UTC", "2026-11-30 00:00:00 UTC"]),
        ("0 0 1 jan,jul *", ["2027-01-01 00:00:00 UTC", "2027-07-01 00:00:00 UTC"]),
        ("0 6 * * 7", ["2026-11-29 06:00:00 UTC", "2026-12-06 06:00:00 UTC"]),
        ("0 6 * * 0", ["2026-11-29 06:00:00 UTC", "2026-12-06 06:00:00 UTC"]),
        ("@hourly", ["2026-11-26 13:00:00 UTC", "2026-11-26 14:00:00 UTC"]),
        ("@daily", ["2026-11-27 00:00:00 UTC", "2026-11-28 00:00:00 UTC"]),
        ("@weekly", ["2026-11-29 00:00:00 UTC", "2026-12-06 00:00:00 UTC"]),
        ("@monthly", ["2026-12-01 00:00:00 UTC", "2027-01-01 00:00:00 UTC"]),
        ("@yearly", ["2027-01-01 00:00:00 UTC", "2028-01-01 00:00:00 UTC"]),
        # Day of month OR day of week, as cron has always done: the 1st, and every Monday.
        ("0 0 1 * mon", ["2026-11-30 00:00:00 UTC", "2026-12-01 00:00:00 UTC"]),
        ("0 0 29 2 *", ["2028-02-29 00:00:00 UTC", "2032-02-29 00:00:00 UTC"]),
    ],
)
def test_next_fires(expression: str, expected: list[str]) -> None:
    assert fires(expression, START, 2) == expected


def test_spring_forward_runs_once_at_the_next_valid_time() -> None:
    """02:30 does not exist in Berlin on 29 March 2026: that day's run is at 03:00."""
    start = datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN)

    assert fires("30 2 * * *", start, 3, BERLIN) == [
        "2026-03-29 03:00:00 CEST",
        "2026-03-30 02:30:00 CEST",
        "2026-03-31 02:30:00 CEST",
    ]


def test_fall_back_runs_a_pinned_job_once() -> None:
    """02:30 happens twice in Berlin on 25 October 2026: the job runs at the first one."""
    start = datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN)

    assert fires("30 2 * * *", start, 3, BERLIN) == [
        "2026-10-25 02:30:00 CEST",
        "2026-10-26 02:30:00 CET",
        "2026-10-27 02:30:00 CET",
    ]


def test_fall_back_keeps_hourly_jobs_hourly_in_real_time() -> None:
    start = datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN)

    assert fires("0 * * * *", start, 4, BERLIN) == [
        "2026-10-25 01:00:00 CEST",
        "2026-10-25 02:00:00 CEST",
        "2026-10-25 02:00:00 CET",
        "2026-10-25 03:00:00 CET",
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", 'invalid minute field "61"'),
        ("0 25 * * *", 'invalid hour field "25"'),
        ("0 0 32 * *", 'invalid day-of-month field "32"'),
        ("0 0 * 13 *", 'invalid month field "13"'),
        ("0 0 * * funday", 'invalid day-of-week field "funday"'),
        ("75 * * * * *", 'invalid second field "75"'),
        ("* * *", "has 3 fields"),
        ("@fortnightly", 'unknown macro "@fortnightly"'),
        ("0 0 30 2 *", "never matches a date"),
        ("", "empty expression"),
    ],
)
def test_invalid_expressions_name_the_bad_part(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_cron(expression, UTC)
