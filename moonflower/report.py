"""The end-of-run summary table."""

from rich.console import Console
from rich.table import Table
from rich.text import Text

from moonflower.backup import RunReport, human_size
from moonflower.redact import redactor


def summary_table(report: RunReport) -> Table:
    table = Table(title="Moonflower backup summary", title_justify="left")
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


def print_summary(report: RunReport, console: Console) -> None:
    if report.results:
        console.print(summary_table(report))
