"""Strict parsing of retention durations: "30 days", "1 month and 2 weeks", "P30D".

The original image accepted anything its natural-language date parser understood, including
"next monday". We accept a small, predictable language and refuse everything else.
"""

import re
from dataclasses import dataclass

import pendulum

EXAMPLES = '"30 days", "2 weeks", "1 month", "1 year", "12 hours", "1 month 2 weeks", "P30D"'
UNITS = {
    "years": ("y", "yr", "yrs", "year", "years"),
    "months": ("mo", "mon", "mons", "month", "months"),
    "weeks": ("w", "wk", "wks", "week", "weeks"),
    "days": ("d", "day", "days"),
    "hours": ("h", "hr", "hrs", "hour", "hours"),
    "minutes": ("min", "mins", "minute", "minutes"),
    "seconds": ("s", "sec", "secs", "second", "seconds"),
}
MAX_YEARS = 100
"""Longer retention or locks than this are typos (8000 years), and dates past 9999 break."""
UNIT_OF_WORD = {word: unit for unit, words in UNITS.items() for word in words}
TERM = re.compile(r"([0-9]+|an?)\s*([a-z]+)")
SEPARATORS = re.compile(r"\s*(?:,|\band\b)\s*|\s+")
ISO_8601_WHOLE_NUMBERS = re.compile(r"P[0-9YMWDTHS]*[YMWDHS]")
"""Whole numbers only, and no dangling "T": pendulum's parser also takes "P1.5D" and "P1DT"."""


@dataclass(frozen=True)
class Period:
    """A calendar-aware length of time: months and years follow the calendar."""

    text: str
    duration: pendulum.Duration

    def after(self, moment: pendulum.DateTime) -> pendulum.DateTime:
        """`moment` plus this period, computed in UTC (31 January + 1 month = 28 February)."""
        return moment.in_timezone("UTC") + self.duration

    @property
    def seconds(self) -> float:
        """Its length from now (months and years vary with the calendar)."""
        now = pendulum.now("UTC")
        return (self.after(now) - now).total_seconds()

    def __str__(self) -> str:
        return self.text


def parse_period(text: str) -> Period:
    """Parse a duration; raise ValueError with accepted examples when it is not one."""
    cleaned = " ".join(text.strip().split())
    try:
        if cleaned[:1] in ("P", "p"):
            duration = _iso(cleaned.upper())
        else:
            amounts = _words(cleaned.lower())
            duration = None if amounts is None else pendulum.duration(**amounts)
    except OverflowError:
        raise ValueError(f'"{text}" is too long: at most {MAX_YEARS} years') from None
    if duration is None:
        raise ValueError(f'"{text}" is not a duration; use for example {EXAMPLES}')
    if not any((duration.years, duration.months, duration.total_seconds())):
        raise ValueError(f'"{text}" is zero; use a positive duration, for example {EXAMPLES}')
    period = Period(cleaned, duration)
    now = pendulum.now("UTC")
    try:
        too_long = period.after(now) > now.add(years=MAX_YEARS)
    except (OverflowError, ValueError):  # past the year 9999
        too_long = True
    if too_long:
        raise ValueError(f'"{text}" is too long: at most {MAX_YEARS} years')
    return period


def _iso(text: str) -> pendulum.Duration | None:
    """An ISO 8601 duration (P1Y2M3DT4H5M6S, P2W), parsed by pendulum."""
    if not ISO_8601_WHOLE_NUMBERS.fullmatch(text):
        return None
    try:
        parsed = pendulum.parse(text)
    except ValueError:  # pendulum's ParserError included
        return None
    return parsed if isinstance(parsed, pendulum.Duration) else None


def _words(text: str) -> dict[str, int] | None:
    amounts = dict.fromkeys(UNITS, 0)
    position = 0
    found = False
    while position < len(text):
        separator = SEPARATORS.match(text, position)
        if separator and separator.end() > position:
            position = separator.end()
            continue
        term = TERM.match(text, position)
        if not term:
            return None
        number, word = term.groups()
        unit = UNIT_OF_WORD.get(word)
        if unit is None:
            return None
        amounts[unit] += 1 if number in ("a", "an") else int(number)
        position = term.end()
        found = True
    return amounts if found else None
