"""What the commands print for operators: the backup summary, and the tables of list,
verify, check and status (prune's are in prune_report)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from rich.console import Console
from rich.table import Table
from rich.text import Text

from moonflower.core.logs import local_time
from moonflower.core.redact import redactor
from moonflower.core.sizes import human_size

if TYPE_CHECKING:
    from moonflower.catalog.logical import BackupInfo
    from moonflower.cli.preflight import Check
    from moonflower.logical.verify import Verified
    from moonflower.pitr.listing import ListedBase
    from moonflower.reporting.health import Health
    from moonflower.storage.catch_up import Copy


def when(moment: pendulum.DateTime | None) -> str:
    return "-" if moment is None else local_time(moment)


def print_backup_list(backups: list[BackupInfo], console: Console, where: str = "") -> None:
    title = f"Moonflower backups ({len(backups)})" + (f" on {where}" if where else "")
    table = Table(title=title, title_justify="left")
    columns = ("database", "created", "size", "encrypted", "locked until", "expires", "flag", "key")
    for column in columns:
        table.add_column(column, overflow="fold")
    for info in backups:
        table.add_row(
            info.backup.database,
            local_time(info.backup.created),
            human_size(info.size),
            "yes" if info.backup.encrypted else "no",
            when(info.locked_until),
            when(info.expires),
            "flagged" if info.flagged else "",
            info.key,
        )
    console.print(table)


def window_text(start: pendulum.DateTime, end: pendulum.DateTime) -> str:
    """`from 2026-11-20 01:00:03.114 UTC to 2026-11-26 14:05:12.480 UTC`: to the millisecond,
    as a recovery target can be given."""

    def shown(moment: pendulum.DateTime) -> str:
        return moment.in_timezone("UTC").format("YYYY-MM-DD HH:mm:ss.SSS [UTC]")

    return f"from {shown(start)} to {shown(end)}"


def print_base_list(bases: list[ListedBase], console: Console) -> None:
    """Base backups and the window each can recover to (point-in-time recovery)."""
    table = Table(title=f"Base backups ({len(bases)})", title_justify="left")
    for column in ("created", "size", "timeline", "WAL", "recoverable", "key"):
        table.add_column(column, overflow="fold")
    for listed in bases:
        base, reach = listed.base, listed.window
        window = window_text(reach.start, reach.end)
        if reach.gap_after:
            window += f" (gap at {reach.gap_after})"
        if base.parent:
            window += f"; incremental on {base.parent}"
        table.add_row(
            str(base.start_time),
            human_size(base.size),
            str(base.timeline),
            f"{base.start_lsn} to {base.stop_lsn}",
            window,
            base.key,
        )
    console.print(table)


def print_verify_table(results: list[Verified], console: Console) -> None:
    table = Table(title="Moonflower verify", title_justify="left")
    for column in ("database", "created", "duration", "result", "key"):
        table.add_column(column, overflow="fold")
    for result in results:
        outcome = (
            Text("ok" + (", restored" if result.restored else ""), style="green")
            if result.ok
            else Text.assemble(("failed", "red"), f": {result.error}")
        )
        table.add_row(
            result.info.backup.database,
            local_time(result.info.backup.created),
            f"{result.seconds:.1f} s",
            outcome,
            result.info.key,
        )
    console.print(table)


def print_checks(checks: list[Check], console: Console) -> None:
    table = Table(title="Moonflower check", title_justify="left")
    for column in ("check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks:
        result = Text("ok", style="green") if check.ok else Text("failed", style="red")
        table.add_row(check.name, result, check.detail)
    console.print(table)


def print_state(
    state: dict[str, Any] | None, verdict: Health, path: Path, console: Console
) -> None:
    table = Table(title=f"Moonflower status ({path})", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    state = state or {}
    scheduler = state.get("scheduler") or {}
    last = state.get("last_run") or {}
    table.add_row("health", ("healthy: " if verdict.ok else "unhealthy: ") + verdict.reason)
    if scheduler:
        table.add_row(
            "scheduler",
            f"pid {scheduler.get('pid')}, started {scheduler.get('started')}, "
            f"schedule {scheduler.get('schedule')}",
        )
    if state.get("scheduler_stopped") and not scheduler:
        table.add_row("scheduler", f"stopped cleanly at {state['scheduler_stopped']}")
    if last:
        table.add_row(
            "last run",
            f"{last.get('started')} to {last.get('finished')}, exit status {last.get('status')}",
        )
    current = state.get("current_run") or {}
    if current:
        table.add_row("running", f"since {current.get('started')} (pid {current.get('pid')})")
    if state.get("next_run"):
        table.add_row("next run", str(state["next_run"]))
    stream = state.get("wal_stream") or {}
    if stream:
        table.add_row(
            "WAL stream",
            f"{'running' if stream.get('running') else 'not running'}, last archived "
            f"{stream.get('last_archived') or '-'}, {stream.get('waiting_bytes', 0)} bytes "
            f"waiting, {stream.get('restarts', 0)} restart(s)",
        )
        for problem in [stream.get("gap"), *stream.get("problems", [])]:
            if problem:
                table.add_row("WAL problem", str(problem))
    for name, record in sorted((state.get("destinations") or {}).items()):
        kind = "optional replica" if record.get("optional") else "replica"
        outcome = "stored" if record.get("ok") else f"FAILED: {record.get('error')}"
        table.add_row(
            f"{kind} {name}",
            f"last store {record.get('at')} ({record.get('what')}): {outcome}; last success "
            f"{record.get('last_success') or 'never'}",
        )
    console.print(table)


def print_copies(copies: list[Copy], dry_run: bool, console: Console) -> None:
    title = "Moonflower sync (dry run)" if dry_run else "Moonflower sync"
    table = Table(title=f"{title}: {len(copies)} to copy", title_justify="left")
    for column in ("to", "key", "result"):
        table.add_column(column, overflow="fold")
    for copy in copies:
        style = "red" if not copy.ok else "green"
        table.add_row(copy.target, redactor.mask(copy.key), Text(copy.result, style=style))
    console.print(table)
