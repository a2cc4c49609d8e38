"""Which backups a retention policy keeps, with the reasons: `restic forget --keep-*`'s rules.

For each rule, the backups are walked newest first and the newest one of each period is kept,
until the rule has kept as many periods as its count; periods without a backup do not count.
A backup is kept if any rule keeps it, if it is younger than S3_EXPIRES_IN, or if it is the
newest of its series. Periods are calendar periods in the policy's time zone: an hour is an
hour of that zone's clock together with its UTC offset (the hour repeated when the clocks go
back is two hours), a day is a calendar day however long, a week is an ISO week.
"""

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import pendulum

from moonflower.config.durations import Period
from moonflower.config.model import RetentionConfig

NEWEST = "newest"
PeriodOf = Callable[[pendulum.DateTime, int], Hashable]
PERIODS: dict[str, PeriodOf] = {
    "last": lambda moment, position: position,
    "hourly": lambda moment, _: (moment.date(), moment.hour, moment.utcoffset()),
    "daily": lambda moment, _: moment.date(),
    "weekly": lambda moment, _: moment.isocalendar()[:2],
    "monthly": lambda moment, _: (moment.year, moment.month),
    "yearly": lambda moment, _: moment.year,
}


@dataclass(frozen=True)
class Policy:
    retention: RetentionConfig
    within: Period | None
    """Keep everything younger than this (S3_EXPIRES_IN)."""

    @property
    def describe_within(self) -> str:
        return f"within {self.within}"


def reasons_to_keep(
    moments: Sequence[pendulum.DateTime], policy: Policy, now: pendulum.DateTime
) -> list[tuple[str, ...]]:
    """For each moment (a backup's creation time, in any order), the reasons it is kept;
    empty for one the policy removes."""
    zone = pendulum.timezone(policy.retention.timezone)
    order = sorted(range(len(moments)), key=lambda index: moments[index], reverse=True)
    left = dict(policy.retention.rules)
    last_period: dict[str, Hashable] = {}
    reasons: list[list[str]] = [[] for _ in moments]
    for position, index in enumerate(order):
        local = moments[index].in_timezone(zone)
        for rule, count in left.items():
            if count == 0:
                continue
            period = PERIODS[rule](local, position)
            if rule in last_period and last_period[rule] == period:
                continue
            last_period[rule] = period
            left[rule] = count - 1
            reasons[index].append(rule)
        if policy.within is not None and policy.within.after(moments[index]) > now:
            reasons[index].append(policy.describe_within)
        if position == 0 and not reasons[index]:
            reasons[index].append(NEWEST)
    return [tuple(found) for found in reasons]


def refusal(series: str, total: int, removing: int, max_percent: int) -> str | None:
    """Why removing `removing` of `total` backups at once is refused, if it is."""
    if total == 0 or removing * 100 <= total * max_percent:
        return None
    share = removing * 100 // total
    return (
        f"BACKUP_PRUNE_MAX_DELETE: pruning would delete {removing} of the {total} backups of "
        f"{series} ({share}%, more than {max_percent}%); nothing of it was deleted. Check the "
        "keep rules, or run `moonflower prune --yes` to delete them anyway"
    )
