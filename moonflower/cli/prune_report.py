"""What `prune` prints: per series every backup with the rules that keep it, or "remove"
(like `restic forget --dry-run`), as a table or as JSON for scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from moonflower.core.sizes import human_size

if TYPE_CHECKING:
    from moonflower.retention.prune import Decision, PruneReport

TIME_FORMAT = "YYYY-MM-DD HH:mm:ss zz"
REMOVED = {"deleted": "deleted", "locked": "locked, kept", "failed": "delete failed"}


def outcome(decision: Decision, report: PruneReport, dry_run: bool) -> str:
    """ "keep (daily, weekly)"; for one the policy removes: "remove" in a dry run, else what
    happened to it."""
    if decision.keep:
        return f"keep ({', '.join(decision.reasons)})"
    if decision.series in report.refused:
        return "remove, refused"
    if dry_run:
        return "remove"
    return REMOVED.get(report.results.get(decision.key, ""), "not deleted")


def shown_time(decision: Decision, zone: str) -> str:
    return decision.created.in_timezone(zone).format(TIME_FORMAT)


def print_prune_table(
    report: PruneReport, dry_run: bool, zone: str, console: Console, where: str = ""
) -> None:
    title = "Moonflower prune (dry run)" if dry_run else "Moonflower prune"
    title += f" on {where}" if where else ""
    table = Table(title=title, title_justify="left")
    for column in ("database", "created", "size", "decision", "key"):
        table.add_column(column, overflow="fold")
    previous = None
    for decision in report.decisions:
        if previous is not None and decision.series != previous:
            table.add_section()
        previous = decision.series
        table.add_row(
            decision.series,
            shown_time(decision, zone),
            human_size(decision.size),
            Text(outcome(decision, report, dry_run), style="green" if decision.keep else "red"),
            decision.key,
        )
    console.print(table)
    verb = "would delete" if dry_run else "deleted"
    done = len(report.removed) if dry_run else sum(r == "deleted" for r in report.results.values())
    held = sum(not d.keep and d.series in report.refused for d in report.decisions)
    lines = [
        f"{verb} {done} of {len(report.decisions)} backups"
        + (f" ({held} more refused by the safety limit)" if held else "")
    ]
    if report.wal_keys:
        lines.append(f"{verb} {len(report.wal_keys)} WAL file(s) no kept base backup needs")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    for problem in report.problems:
        console.print(Text(problem, style="red"), soft_wrap=True)


def prune_document(report: PruneReport, dry_run: bool) -> dict[str, Any]:
    """`prune --json`: the same decisions for scripts."""
    series: dict[str, dict[str, Any]] = {}
    for decision in report.decisions:
        entry = series.setdefault(
            decision.series,
            {
                "database": decision.series,
                "kind": decision.kind,
                "refused": report.refused.get(decision.series),
                "backups": [],
            },
        )
        entry["backups"].append(
            {
                "key": decision.key,
                "created": decision.created.in_timezone("UTC").isoformat().replace("+00:00", "Z"),
                "size": decision.size,
                "keep": decision.keep,
                "reasons": list(decision.reasons),
                "result": result_word(decision, report, dry_run),
            }
        )
    return {
        "dry_run": dry_run,
        "ok": report.ok,
        "series": list(series.values()),
        "wal_removed": len(report.wal_keys),
        "errors": report.problems,
    }


def result_word(decision: Decision, report: PruneReport, dry_run: bool) -> str:
    if decision.keep:
        return "keep"
    if decision.series in report.refused:
        return "refused"
    if dry_run:
        return "remove"
    return report.results.get(decision.key, "not deleted")
