"""The keep rules against timelines whose answers were worked out by hand from restic's
semantics: per rule, newest first, the newest backup of each of the last N periods that have
one; a backup is kept if any rule keeps it."""

from dataclasses import dataclass, field

import pendulum
import pytest

from moonflower.config.durations import parse_period
from moonflower.config.model import RetentionConfig
from moonflower.retention.keep_rules import Policy, reasons_to_keep, refusal

NOW = pendulum.datetime(2027, 6, 1, 12, tz="UTC")


def utc(text: str) -> pendulum.DateTime:
    moment = pendulum.parse(text, tz="UTC")
    assert isinstance(moment, pendulum.DateTime)
    return moment


def local(text: str, zone: str) -> pendulum.DateTime:
    moment = pendulum.parse(text, tz=zone)
    assert isinstance(moment, pendulum.DateTime)
    return moment.in_timezone("UTC")


@dataclass
class Case:
    name: str
    backups: list[pendulum.DateTime]
    rules: dict[str, int]
    kept: dict[int, tuple[str, ...]]
    """Index into `backups` -> the reasons it is kept; every other index is removed."""
    zone: str = "UTC"
    within: str | None = None
    now: pendulum.DateTime = field(default=NOW)


BERLIN = "Europe/Berlin"
CASES = [
    Case(
        "keep last 3 of 5",
        [utc(f"2027-01-0{day}T01:00:00") for day in range(1, 6)],
        {"last": 3},
        {4: ("last",), 3: ("last",), 2: ("last",)},
    ),
    Case(
        "several backups in one day: only the newest of each day counts",
        [
            utc("2027-01-01T01:00:00"),
            utc("2027-01-01T13:00:00"),
            utc("2027-01-02T01:00:00"),
            utc("2027-01-02T13:00:00"),
            utc("2027-01-02T23:59:59"),
        ],
        {"daily": 2},
        {4: ("daily",), 1: ("daily",)},
    ),
    Case(
        "empty days do not use up the count",
        [utc(f"2027-01-{day:02d}T01:00:00") for day in (1, 5, 9, 10)],
        {"daily": 3},
        {3: ("daily",), 2: ("daily",), 1: ("daily",)},
    ),
    Case(
        "month ends and a leap day",
        [
            utc("2024-01-31T22:00:00"),
            utc("2024-02-29T22:00:00"),
            utc("2024-03-01T00:00:00"),
            utc("2024-03-31T23:59:00"),
        ],
        {"monthly": 3},
        {3: ("monthly",), 1: ("monthly",), 0: ("monthly",)},
    ),
    Case(
        "the leap day is a day of its own",
        [
            utc("2024-02-28T23:00:00"),
            utc("2024-02-29T01:00:00"),
            utc("2024-02-29T23:59:00"),
            utc("2024-03-01T00:00:00"),
        ],
        {"daily": 3},
        {3: ("daily",), 2: ("daily",), 0: ("daily",)},
    ),
    Case(
        "ISO weeks: 31 December 2026 and 3 January 2027 are both in week 53 of 2026",
        [
            utc("2026-12-27T12:00:00"),  # Sunday, week 52
            utc("2026-12-28T12:00:00"),  # Monday, week 53
            utc("2026-12-31T12:00:00"),
            utc("2027-01-03T12:00:00"),  # Sunday, still week 53 of 2026
            utc("2027-01-04T12:00:00"),  # Monday, week 1 of 2027
        ],
        {"weekly": 2},
        {4: ("weekly",), 3: ("weekly",)},
    ),
    Case(
        "years follow the time zone: 23:30 UTC on 31 December is New Year in Berlin",
        [utc("2023-06-01T00:00:00"), utc("2023-12-31T23:30:00"), utc("2024-06-01T00:00:00")],
        {"yearly": 2},
        {2: ("yearly",), 0: ("yearly",)},
        zone=BERLIN,
    ),
    Case(
        "the same backups in UTC",
        [utc("2023-06-01T00:00:00"), utc("2023-12-31T23:30:00"), utc("2024-06-01T00:00:00")],
        {"yearly": 2},
        {2: ("yearly",), 1: ("yearly",)},
    ),
    Case(
        "days across the spring DST change in Berlin (a 23-hour day is one day)",
        [local(f"2026-03-{day}T01:00:00", BERLIN) for day in (27, 28, 29, 30, 31)],
        {"daily": 3},
        {4: ("daily",), 3: ("daily",), 2: ("daily",)},
        zone=BERLIN,
    ),
    Case(
        "the 25-hour autumn day in Berlin is one day: 00:30 and 23:30 local",
        [
            local("2026-10-24T12:00:00", BERLIN),
            local("2026-10-25T00:30:00", BERLIN),
            local("2026-10-25T23:30:00", BERLIN),
        ],
        {"daily": 2},
        {2: ("daily",), 0: ("daily",)},
        zone=BERLIN,
    ),
    Case(
        "the same day in UTC is two days (22:30Z on 24 and 25 October)",
        [
            local("2026-10-24T12:00:00", BERLIN),
            local("2026-10-25T00:30:00", BERLIN),
            local("2026-10-25T23:30:00", BERLIN),
        ],
        {"daily": 2},
        {2: ("daily",), 1: ("daily",)},
    ),
    Case(
        "the hour repeated when Berlin's clocks go back is two hours",
        [
            utc("2026-10-25T00:10:00"),  # 02:10 CEST
            utc("2026-10-25T00:50:00"),  # 02:50 CEST
            utc("2026-10-25T01:10:00"),  # 02:10 CET
            utc("2026-10-25T01:50:00"),  # 02:50 CET
        ],
        {"hourly": 5},
        {3: ("hourly",), 1: ("hourly",)},
        zone=BERLIN,
    ),
    Case(
        "the hour skipped in spring: 01:30 CET and 03:30 CEST are neighbouring hours",
        [utc("2026-03-29T00:30:00"), utc("2026-03-29T01:30:00"), utc("2026-03-29T01:45:00")],
        {"hourly": 2},
        {2: ("hourly",), 0: ("hourly",)},
        zone=BERLIN,
    ),
    Case(
        "rules combine; a backup keeps every reason",
        [utc(f"2027-01-{day:02d}T01:00:00") for day in range(1, 22)],  # 1 to 21 January
        {"last": 2, "daily": 3, "weekly": 2, "monthly": 2},
        {
            20: ("last", "daily", "weekly", "monthly"),  # Thursday 21
            19: ("last", "daily"),
            18: ("daily",),
            16: ("weekly",),  # Sunday 17 January ends the week before
        },
    ),
    Case(
        "monthly reaches back over months without backups",
        [utc("2026-01-15T00:00:00"), utc("2026-02-15T00:00:00"), utc("2026-09-15T00:00:00")],
        {"monthly": 2, "yearly": 1},
        {2: ("monthly", "yearly"), 1: ("monthly",)},
    ),
    Case(
        "S3_EXPIRES_IN with rules keeps everything younger, like --keep-within",
        [utc("2027-05-01T00:00:00"), utc("2027-05-20T00:00:00"), utc("2027-05-30T00:00:00")],
        {"monthly": 1},
        {2: ("monthly", "within 14 days"), 1: ("within 14 days",)},
        within="14 days",
    ),
    Case(
        "only zeros: nothing but the newest",
        [utc("2027-01-01T00:00:00"), utc("2027-02-01T00:00:00")],
        {"last": 0, "daily": 0},
        {1: ("newest",)},
    ),
    Case(
        "S3_EXPIRES_IN alone: expired ones go, never the newest",
        [utc("2027-01-01T00:00:00"), utc("2027-02-01T00:00:00")],
        {},
        {1: ("newest",)},
        within="30 days",
    ),
    Case(
        "S3_EXPIRES_IN alone keeps what has not expired",
        [utc("2027-05-01T00:00:00"), utc("2027-05-30T00:00:00"), utc("2027-05-31T00:00:00")],
        {},
        {1: ("within 30 days",), 2: ("within 30 days",)},
        within="30 days",
    ),
    Case(
        "given in any order",
        [utc("2027-01-03T00:00:00"), utc("2027-01-01T00:00:00"), utc("2027-01-02T00:00:00")],
        {"last": 2},
        {0: ("last",), 2: ("last",)},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_timeline(case: Case) -> None:
    retention = RetentionConfig(**case.rules, timezone=case.zone)
    within = parse_period(case.within) if case.within else None

    reasons = reasons_to_keep(case.backups, Policy(retention, within), case.now)

    expected = [case.kept.get(index, ()) for index in range(len(case.backups))]
    assert reasons == expected


def test_the_newest_is_kept_when_no_rule_keeps_anything_and_it_is_old() -> None:
    backups = [utc("2020-01-01T00:00:00"), utc("2020-01-02T00:00:00")]
    policy = Policy(RetentionConfig(), parse_period("1 day"))

    assert reasons_to_keep(backups, policy, NOW) == [(), ("newest",)]


@pytest.mark.parametrize(
    ("total", "removing", "limit", "refused"),
    [
        (10, 5, 50, False),
        (10, 6, 50, True),
        (3, 2, 50, True),
        (2, 1, 50, False),
        (1, 0, 0, False),
        (4, 1, 0, True),
        (10, 10, 100, False),
        (0, 0, 50, False),
    ],
)
def test_the_safety_limit(total: int, removing: int, limit: int, refused: bool) -> None:
    reason = refusal("app", total, removing, limit)

    assert (reason is not None) == refused
    if reason:
        assert reason.startswith("BACKUP_PRUNE_MAX_DELETE:")
        assert f"{removing} of the {total} backups of app" in reason
