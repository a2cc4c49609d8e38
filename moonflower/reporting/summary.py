"""A logical backup run's summary: the table people read, the JSON document machines read.
rich loads only when a table is drawn: a backup reaches pg_dump first."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from moonflower.core.redact import redactor
from moonflower.core.sizes import human_size

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from moonflower.logical.backup import RunReport


def summary_table(report: RunReport) -> Table:
    from rich.table import Table
    from rich.text import Text

    title = "Moonflower backup summary" + (f" (cluster {report.cluster})" if report.cluster else "")
    table = Table(title=title, title_justify="left")
    for column in ("database", "size", "duration", "throughput", "object key", "result"):
        table.add_column(column, overflow="fold")
    for result in report.results:
        throughput = (
            f"{human_size(result.size / result.seconds)}/s" if result.ok and result.seconds else "-"
        )
        table.add_row(
            redactor.mask(result.database),
            human_size(result.size) if result.ok else "-",
            f"{result.seconds:.1f} s",
            throughput,
            redactor.mask(result.key or "-"),
            Text("ok", style="green") if result.ok else Text("failed", style="red"),
        )
    return table


def summary_document(report: RunReport) -> dict[str, Any]:
    """The summary for LOG_FORMAT=json: one object on stdout, secrets masked."""
    return {
        "summary": "backup",
        **({"cluster": report.cluster} if report.cluster else {}),
        "ok": report.ok,
        "error": redactor.mask(report.error) if report.error else None,
        "prune_error": redactor.mask(report.prune_error) if report.prune_error else None,
        "databases": [
            {
                "database": redactor.mask(result.database),
                "ok": result.ok,
                "key": redactor.mask(result.key) if result.key else None,
                "size": result.size if result.ok else None,
                "seconds": round(result.seconds, 3),
                "error": redactor.mask(result.error) if result.error else None,
                "size_drop": redactor.mask(result.size_drop) if result.size_drop else None,
            }
            for result in report.results
        ],
        "pruned": report.pruned,
    }


def print_summary(report: RunReport, console: Console) -> None:
    from rich.text import Text

    if report.results:
        console.print(summary_table(report))
    for result in report.results:
        if result.size_drop:
            line = f"{redactor.mask(result.database)}: {redactor.mask(result.size_drop)}"
            console.print(Text(line, "yellow"), soft_wrap=True)
    if report.prune_error:
        console.print(
            Text(f"pruning expired backups failed: {redactor.mask(report.prune_error)}", "red")
        )


SUMMARY_WIDTH = 160


def output_console() -> Console:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else SUMMARY_WIDTH)
