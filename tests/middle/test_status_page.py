"""The status page after real runs against S3 (moto) and PostgreSQL: the overview table
(problems first), charts with labelled axes, the recovery timeline, one time format, long
errors folded, and no stale listing after a run."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pendulum

from moonflower.config.model import Config
from moonflower.core.state_dir import state_directory
from moonflower.jobs.backup import backup_once
from moonflower.pitr.basebackup import take_base_backup
from moonflower.reporting.page import PageSource
from moonflower.reporting.status_file import StateFile
from moonflower.storage.destination import Destination
from tests.middle.conftest import configured

TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


class Elements(HTMLParser):
    """Every element with its attributes, and the text of each table row."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def having(self, tag: str, css: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.found if name == tag and attrs.get("class") == css]


def parsed(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    return elements


def rendered(config: Config) -> str:
    return PageSource(
        config, Destination(config.s3), StateFile(state_directory(config.backup))
    ).render()


def test_the_overview_puts_problems_first_and_the_charts_have_axes(
    backup_env: dict[str, str],
) -> None:
    good = configured(backup_env, PG_DATABASES="second")
    for _ in range(2):
        backup_once(good, [Destination(good.s3)])
    broken = configured(backup_env, PG_DATABASES="second zz_missing_database")
    backup_once(broken, [Destination(broken.s3)])
    page = rendered(broken)
    elements = parsed(page)

    overview = page[page.index("<table class=overview>") :]
    overview = overview[: overview.index("</table>")]
    rows = parsed(overview).rows
    assert rows[0][:2] == ["database", "last backup"]
    assert [row[0] for row in rows[1:]] == ["zz_missing_database", "second"]
    assert rows[1][4].startswith("failed at ")
    assert rows[2][4] == "ok"
    assert TIME.fullmatch(rows[2][2])

    charts = elements.having("svg", "chart")
    assert len(charts) == 2  # size and duration, each on its own axes
    assert len(elements.having("line", "axis")) >= 4
    assert elements.having("text", "axis-title")
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', page)
    assert any(tick.endswith((" B", "KiB", "MiB")) for tick in ticks), ticks
    assert any(tick.endswith(" s") for tick in ticks), ticks
    assert page.count('<circle class="size"') == 3
    assert "<script" not in page


def test_a_long_error_is_folded_under_its_row(backup_env: dict[str, str]) -> None:
    config = configured(backup_env, PG_DATABASES="zz_missing_database")
    backup_once(config, [Destination(config.s3)])
    page = rendered(config)
    assert "<details><summary>" in page
    assert "database &quot;zz_missing_database&quot; does not exist</details>" in page


def test_the_listing_is_read_again_when_a_run_ended(backup_env: dict[str, str]) -> None:
    config = configured(backup_env, PG_DATABASES="second")
    source = PageSource(config, Destination(config.s3), StateFile(state_directory(config.backup)))
    before = source.render()
    assert before.count('<circle class="size"') == 0
    backup_once(config, [Destination(config.s3)])
    after = source.render()  # within the cache's minute: a run ended, so it is read again
    assert after.count('<circle class="size"') == 1


def test_the_recovery_window_is_drawn_with_its_base_backups(
    backup_env: dict[str, str], tmp_path: Path
) -> None:
    config = configured(backup_env, BASEBACKUP_SCHEDULE="@daily")
    record = take_base_backup(config, Destination(config.s3), None)
    page = rendered(config)
    elements = parsed(page)
    [timeline] = elements.having("svg", "timeline")
    assert timeline
    assert len(elements.having("rect", "base")) == 1
    assert len(elements.having("rect", "window")) == 1
    started = pendulum.parse(record.start_time).in_timezone("UTC")  # type: ignore[union-attr]
    assert started.format("MM-DD HH:mm") in page
    assert "Point-in-time recovery" in page
