"""The status page's pictures, as inline SVG (no script, nothing from another site): a chart
with labelled axes for one quantity over time, and the point-in-time recovery window drawn
as a timeline of base backups."""

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import pendulum

from moonflower.core.sizes import human_size
from moonflower.reporting.page_text import esc, moment_of, when

if TYPE_CHECKING:
    from moonflower.pitr.listing import ListedBase

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 78, 18, 26, 40
TIMELINE_BASES = 10
"""The newest base backups drawn on the timeline."""
ROW = 18


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def nice_size_ceiling(value: float) -> float:
    """`nice_ceiling` in the binary unit of `value` (B, KiB, MiB, ...), so ticks read 50 KiB,
    100 KiB rather than 48.8 KiB, 97.7 KiB."""
    if value <= 0:
        return 1024.0
    unit = 1024 ** math.floor(math.log(value, 1024))
    return nice_ceiling(value / unit) * unit


def short_time(moment: pendulum.DateTime, span_seconds: float = 86400.0) -> str:
    """To the second within a day, else to the minute with the date."""
    layout = "HH:mm:ss" if span_seconds < 86400 else "MM-DD HH:mm"
    return moment.in_timezone("UTC").format(layout)


def x_of(
    moment: pendulum.DateTime, start: pendulum.DateTime, end: pendulum.DateTime, width: float
) -> float:
    span = (end - start).total_seconds()
    if span <= 0:
        return LEFT + width / 2
    return LEFT + (moment - start).total_seconds() / span * width


def time_axis(start: pendulum.DateTime, end: pendulum.DateTime, width: float, y: float) -> str:
    """The x axis with the first, middle and last time (UTC)."""
    parts = [f'<line class="axis" x1="{LEFT}" y1="{y}" x2="{LEFT + width}" y2="{y}"/>']
    span = (end - start).total_seconds()
    if start == end:
        moments = [(start, "middle")]
    else:
        moments = [(start, "start"), (start + (end - start) / 2, "middle"), (end, "end")]
    for moment, anchor in moments:
        x = x_of(moment, start, end, width)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{y + 16}" text-anchor="{anchor}">'
            f"{esc(short_time(moment, span))}</text>"
        )
    parts.append(
        f'<text class="axis-title" x="{LEFT + width / 2:.1f}" y="{y + 32}" '
        'text-anchor="middle">time (UTC)</text>'
    )
    return "".join(parts)


def line_chart(
    title: str,
    css: str,
    samples: list[tuple[pendulum.DateTime, float]],
    label: Callable[[float, float], str],
    ceiling: Callable[[float], float] = nice_ceiling,
) -> str:
    """One quantity over time: y from zero with three labelled ticks (`label(value, top)`),
    x by time."""
    samples = sorted(samples)
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = ceiling(max((value for _, value in samples), default=0.0))
    start, end = samples[0][0], samples[-1][0]
    parts = [
        f'<svg role="img" class="chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}"><title>{esc(title)}</title>',
        f'<text class="chart-title" x="{LEFT}" y="16">{esc(title)}</text>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + height}"/>',
    ]
    for share in (0.0, 0.5, 1.0):
        y = TOP + height - share * height
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + width}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(label(share * top, top))}</text>"
        )
    parts.append(time_axis(start, end, width, TOP + height))
    placed = [
        (x_of(moment, start, end, width), TOP + height - value / top * height, moment, value)
        for moment, value in samples
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in placed)
    parts.append(f'<polyline class="{css}-line" points="{line}"/>')
    for x, y, moment, value in placed:
        parts.append(
            f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>'
            f"{when(moment)}: {esc(label(value, 0.0))}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def size_label(value: float, _: float) -> str:
    return human_size(int(value))


def seconds_label(value: float, top: float) -> str:
    """One decimal, as everywhere on the page; two on an axis that ends below a second."""
    return f"{value:.2f} s" if 0 < top < 1 else f"{value:.1f} s"


def recovery_timeline(bases: "list[ListedBase]") -> str:
    """Each of the newest base backups (a mark) and the window it can recover to (a bar),
    on one time axis; a gap in the WAL ends a bar early and is named."""
    shown = sorted(bases, key=lambda listed: listed.window.start)[-TIMELINE_BASES:]
    marks = [moment_of(listed.base.start_time) or listed.window.start for listed in shown]
    start = min(min(marks), *(listed.window.start for listed in shown))
    end = max(listed.window.end for listed in shown)
    width = WIDTH - LEFT - RIGHT
    height = TOP + ROW * len(shown) + BOTTOM
    parts = [
        f'<svg role="img" class="timeline" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}"><title>point-in-time recovery window</title>',
        f'<text class="chart-title" x="{LEFT}" y="16">recoverable to any moment on a bar</text>',
    ]
    for row, (listed, taken) in enumerate(zip(shown, marks, strict=True)):
        y = TOP + row * ROW
        base, window = listed.base, listed.window
        left = x_of(window.start, start, end, width)
        right = max(x_of(window.end, start, end, width), left + 2)
        mark = x_of(taken, start, end, width)
        gap = f"; the WAL breaks at {window.gap_after}" if window.gap_after else ""
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 12}" text-anchor="end">'
            f"{esc(short_time(taken, (end - start).total_seconds()))}</text>"
            f'<rect class="window" x="{left:.1f}" y="{y + 3}" width="{right - left:.1f}" '
            f'height="{ROW - 6}"><title>from {when(window.start)} to {when(window.end)}'
            f"{esc(gap)}</title></rect>"
            f'<rect class="base" x="{mark - 3:.1f}" y="{y + 1}" width="6" height="{ROW - 2}">'
            f"<title>base backup {esc(base.label)}, {esc(human_size(base.size))}</title></rect>"
        )
        if window.gap_after:
            parts.append(f'<text class="gap" x="{right + 4:.1f}" y="{y + 12}">gap</text>')
    parts.append(time_axis(start, end, width, TOP + ROW * len(shown)))
    parts.append("</svg>")
    return "".join(parts)
