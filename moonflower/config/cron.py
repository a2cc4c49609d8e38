"""Cron expressions: validation with field-level messages, and next fire times in local time.

croniter does the calendar arithmetic. This module adds what operators expect on top:
6-field expressions with seconds first (as the original image accepted), and a job pinned
to an hour that falls in the repeated hour of a daylight-saving change runs once, not twice.
"""

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

MACRO_EXAMPLES = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
FIVE_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
SIX_FIELDS = ("second", *FIVE_FIELDS)
HOUR_FIELD = 1
"""Index of the hour in croniter's expanded fields (seconds, if any, come last there)."""
EXAMPLES = '"0 1 * * *" (01:00 daily), "*/20 * * * * *" (every 20 s), "@daily"'


def croniter_class() -> Any:
    """croniter, imported only once a schedule is used: a one-shot backup does not pay for it
    (on import it even runs `file` through Python's platform module)."""
    from croniter import croniter

    return croniter


class CronError(ValueError):
    """A cron expression that cannot be used; the message names the bad part."""


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    """As the user wrote it (whitespace tidied); croniter reads macros such as @daily."""
    timezone: tzinfo

    @property
    def has_seconds(self) -> bool:
        return len(self.expression.split()) == len(SIX_FIELDS)

    @property
    def pins_hours(self) -> bool:
        """Fires only at some hours (so a repeated wall-clock hour must not fire twice)."""
        fields = croniter_class()(self.expression, second_at_beginning=self.has_seconds).expanded
        return fields[HOUR_FIELD] != ["*"]

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment`, as an aware local datetime."""
        candidate = self._following(moment)
        if self.pins_hours and is_repeated_wall_time(candidate):
            # Its first occurrence, an hour earlier in real time, was the run for this time.
            candidate = self._following(candidate)
        return candidate

    def _following(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.timezone)
        iterator = croniter_class()(
            self.expression, local, second_at_beginning=self.has_seconds, day_or=True
        )
        result: datetime = iterator.get_next(datetime)
        return result


def is_repeated_wall_time(moment: datetime) -> bool:
    """True for the second occurrence of a local time repeated when clocks go back."""
    first = moment.replace(fold=0).utcoffset()
    second = moment.replace(fold=1).utcoffset()
    if first is None or second is None:
        return False
    return first > second and moment.utcoffset() == second


def parse_cron(expression: str, timezone: tzinfo) -> CronSchedule:
    text = " ".join(expression.split())
    if not text:
        raise CronError(f"empty expression; expected a cron expression such as {EXAMPLES}")
    if text.startswith("@"):
        if not croniter_class().is_valid(text):
            raise CronError(f'unknown macro "{text}"; use one of {MACRO_EXAMPLES}')
        return checked(CronSchedule(text, timezone))
    fields = text.split()
    if len(fields) not in (len(FIVE_FIELDS), len(SIX_FIELDS)):
        raise CronError(
            f'"{text}" has {len(fields)} fields; expected 5 (minute hour day-of-month month '
            "day-of-week) or 6 (second first)"
        )
    names = SIX_FIELDS if len(fields) == len(SIX_FIELDS) else FIVE_FIELDS
    with_seconds = names is SIX_FIELDS
    for index, value in enumerate(fields):
        if not value.isascii():  # croniter would take other scripts' digits
            raise CronError(f'invalid {names[index]} field "{value}" in "{text}"')
        probe = ["*"] * len(fields)
        probe[index] = value
        if not croniter_class().is_valid(" ".join(probe), second_at_beginning=with_seconds):
            raise CronError(f'invalid {names[index]} field "{value}" in "{text}"')
    return checked(CronSchedule(text, timezone))


def checked(schedule: CronSchedule) -> CronSchedule:
    """The schedule, if it ever fires."""
    from croniter import CroniterBadDateError

    try:
        schedule.next_after(datetime.now(schedule.timezone))
    except CroniterBadDateError:
        raise CronError(f'"{schedule.expression}" never matches a date') from None
    return schedule
