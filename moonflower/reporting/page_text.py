"""How the status page writes times, ages, durations and long texts: one format each, every
text escaped and masked."""

import html

import pendulum

from moonflower.core.redact import redactor

FOLD_AFTER = 80
"""Characters of an error shown in its row; the rest unfolds under it."""


def esc(value: object) -> str:
    return html.escape(redactor.mask(str(value)))


def moment_of(value: pendulum.DateTime | str | None) -> pendulum.DateTime | None:
    if value is None or isinstance(value, pendulum.DateTime):
        return value
    try:
        parsed = pendulum.parse(str(value))
    except (ValueError, pendulum.parsing.exceptions.ParserError):
        return None
    return parsed if isinstance(parsed, pendulum.DateTime) else None


def when(value: pendulum.DateTime | str | None) -> str:
    """UTC, to the second, everywhere on the page."""
    moment = moment_of(value)
    if moment is None:
        return "-" if value is None else esc(value)
    return esc(moment.in_timezone("UTC").format("YYYY-MM-DD HH:mm:ss [UTC]"))


def age(value: pendulum.DateTime | str | None, now: pendulum.DateTime) -> str:
    """How long ago, in the two largest units: `3 h 12 min`, `2 d 4 h`."""
    moment = moment_of(value)
    if moment is None:
        return "-"
    seconds = max(int((now - moment).total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else "under a minute"


def duration(seconds: object) -> str:
    """Seconds with one decimal, everywhere on the page."""
    return f"{seconds:.1f} s" if isinstance(seconds, int | float) else "-"


def folded(text: str) -> str:
    """A long text's start in its row, the whole of it unfolded under it (no script)."""
    if len(text) <= FOLD_AFTER:
        return esc(text)
    return f"<details><summary>{esc(text[:FOLD_AFTER])}…</summary>{esc(text)}</details>"
