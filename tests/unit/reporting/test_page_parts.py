"""The status page's scales, times and folded texts."""

import pendulum
import pytest

from moonflower.reporting.page_svg import nice_ceiling, nice_size_ceiling, seconds_label
from moonflower.reporting.page_text import FOLD_AFTER, age, duration, folded, when


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (0.07, 0.1), (3, 5), (12, 20), (24, 25), (100, 100), (101, 200)]
)
def test_axes_end_on_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_size_axes_end_on_a_round_binary_size() -> None:
    assert nice_size_ceiling(65_000) == 100 * 1024
    assert nice_size_ceiling(3 * 1024**3) == 5 * 1024**3


def test_one_time_format_and_one_duration_precision() -> None:
    assert when("2026-12-04T01:02:03.456789+01:00") == "2026-12-04 00:02:03 UTC"
    assert when("not a time <b>") == "not a time &lt;b&gt;"
    assert duration(2) == "2.0 s"
    assert duration(None) == "-"
    assert seconds_label(0.05, 0.1) == "0.05 s"
    assert seconds_label(5, 10) == "5.0 s"


def test_ages_in_their_two_largest_units() -> None:
    now = pendulum.datetime(2026, 12, 4, 12)
    assert age(now.subtract(seconds=20), now) == "under a minute"
    assert age(now.subtract(hours=3, minutes=12), now) == "3 h 12 min"
    assert age(now.subtract(days=2, hours=4), now) == "2 d 4 h"
    assert age(None, now) == "-"


def test_a_long_text_folds_and_is_escaped() -> None:
    short = "disk <full>"
    assert folded(short) == "disk &lt;full&gt;"
    long = "x" * (FOLD_AFTER + 10) + "<end>"
    shown = folded(long)
    assert shown.startswith("<details><summary>")
    assert "&lt;end&gt;</details>" in shown
