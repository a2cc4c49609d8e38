"""Command-line parsers of the physical-backup commands (point-in-time recovery)."""

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moonflower.cli.destinations import FROM_HELP
from moonflower.config.model import Config
from moonflower.core.exit_status import ExitStatus

if TYPE_CHECKING:
    from moonflower.storage.destination import Destination

AddCommand = Callable[..., argparse.ArgumentParser]
COMMANDS = ("basebackup", "wal-push", "wal-fetch", "restore-cluster")
CONNECTION = frozenset({"PG_HOST", "PG_USER", "PG_PASSWORD"})
POSTGRES_NEEDS = {
    "basebackup": CONNECTION,
    "wal-push": frozenset(),
    "wal-fetch": frozenset(),
    "restore-cluster": frozenset(),
}
"""The PG_* settings each physical command cannot do without: the WAL archive and the
restore talk to S3 only, a base backup copies the whole cluster (no database list)."""


S3_ONLY = frozenset({"list", "prune", "health", "status", "sync"})
"""Commands that read only S3 or the status file: no PG_* setting at all (a disaster
recovery host knows nothing of the lost server)."""
WAL_ONLY_CAPABLE = frozenset({"run", "check"})
"""Commands that need no database list when only physical backups are configured."""


def postgres_needs(arguments: Any) -> frozenset[str] | None:
    """For the physical commands (and `verify --physical`), what they need of PG_*; None
    for every other command (all of it)."""
    if getattr(arguments, "physical", False) or arguments.command in S3_ONLY:
        return frozenset()
    if arguments.command in WAL_ONLY_CAPABLE:
        return CONNECTION
    return POSTGRES_NEEDS.get(arguments.command or "")


def require_databases(config: Config, command: str | None) -> None:
    """`run` and `check` need PG_DATABASES for logical backups (SCHEDULE), not for a
    WAL-only set-up (WAL_STREAM or BASEBACKUP_SCHEDULE without SCHEDULE)."""
    from moonflower.core.errors import ConfigError

    physical = config.wal.stream or config.wal.basebackup_schedule is not None
    wal_only = physical and config.schedule is None
    if command in WAL_ONLY_CAPABLE and not wal_only and not config.postgres.databases:
        raise ConfigError(
            ["PG_DATABASES: required, not set (or set WAL_STREAM=on for a WAL-only set-up)"]
        )


def add_physical_commands(add_command: AddCommand) -> None:
    base = add_command(
        "basebackup",
        help="take a physical base backup of the cluster (pg_basebackup) into S3_PATH/base/",
        description="Take a physical base backup with pg_basebackup (tar, with the WAL it "
        "needs), compressed and encrypted like other backups, into S3_PATH/base/<time>/ with "
        "a backup.json describing it. It restores on its own, even without the WAL archive. "
        "With BASEBACKUP_INCREMENTAL=on (PostgreSQL 17+, summarize_wal = on) it stores only "
        "what changed since the previous base backup, up to BASEBACKUP_FULL_EVERY in a chain.",
    )
    base.add_argument(
        "--full", action="store_true", help="a full base backup even with BASEBACKUP_INCREMENTAL"
    )
    push = add_command(
        "wal-push",
        help="archive one WAL file (for archive_command = 'moonflower wal-push %%p')",
        description="Archive one completed WAL segment or timeline history file under "
        "S3_PATH/wal/. Pushing the same file again succeeds without a second upload; a "
        "different file under a name already archived is refused (exit 1).",
    )
    push.add_argument("wal_path", type=Path, metavar="PATH", help="the file (%%p)")
    fetch = add_command(
        "wal-fetch",
        help="fetch one WAL file (for restore_command = 'moonflower wal-fetch %%f %%p')",
        description="Fetch one archived WAL file, checked against its recorded checksum, "
        "into PATH. Exit 1 when the archive does not hold it (the normal end of a recovery).",
    )
    fetch.add_argument("wal_name", metavar="NAME", help="the WAL file name (%%f)")
    fetch.add_argument("wal_target", type=Path, metavar="PATH", help="where to write it (%%p)")
    restore = add_command(
        "restore-cluster",
        help="restore the cluster into an empty directory, to a point in time",
        description="Pick the newest base backup that ended before the target, check it "
        "(checksum, then pg_verifybackup), extract it into the empty directory DIR, fetch the "
        "archived WAL into DIR/pg_wal and write the recovery settings (recovery.signal, the "
        "target, recovery_target_action = promote). DIR then starts with the stock pg_ctl of "
        "the same major version. With --start, run that recovery now and report the point "
        "reached.",
    )
    restore.add_argument("--to", required=True, metavar="DIR", help="an empty or new directory")
    restore.add_argument("--from", dest="source", metavar="NAME", help=FROM_HELP)
    which = restore.add_mutually_exclusive_group(required=True)
    which.add_argument("--time", metavar="TIME", help='e.g. "2026-11-26 14:03:07+00"')
    which.add_argument("--lsn", metavar="LSN", help="a WAL position, e.g. 0/3000028")
    which.add_argument("--latest", action="store_true", help="as far as the archive reaches")
    restore.add_argument(
        "--timeline",
        metavar="N|latest",
        help="the timeline to recover along (default: the base backup's own, and a newer one "
        "only where the old one ended, as after a failover; a fork is reported, not followed)",
    )
    restore.add_argument(
        "--start", action="store_true", help="run the recovery now, then stop the server"
    )
    restore.add_argument(
        "--keep-archiving",
        action="store_true",
        help="keep the backup's archive_mode and archive_command (off by default: a restored "
        "copy must not write into the archive it came from; keep them only for a copy that "
        "becomes the new primary)",
    )
    restore.add_argument(
        "--run-as",
        metavar="USER",
        help="as root: the user who owns DIR and runs the server (default: DIR's owner)",
    )
    restore.add_argument(
        "--wal-fetch-command",
        action="store_true",
        help="do not copy the WAL into DIR; set restore_command to `moonflower wal-fetch` "
        "(for very long WAL ranges). Needs --config FILE: the server has none of Moonflower's "
        "environment, and its user must be able to run Moonflower and read FILE (checked "
        "by fetching one WAL file as that user before anything is written)",
    )


def execute_physical(
    command: str, config: Config, destinations: "list[Destination]", arguments: Any
) -> ExitStatus:
    from moonflower.cli import physical_commands as run

    if command == "basebackup":
        from moonflower.jobs.base_backup import base_backup

        return base_backup(config, destinations, full=arguments.full)
    if command == "wal-push":
        return run.wal_push(config, destinations, arguments.wal_path)
    if command == "wal-fetch":
        return run.wal_fetch(config, destinations, arguments.wal_name, arguments.wal_target)
    from moonflower.storage.destination import chosen

    return run.restore_cluster(config, chosen(destinations, arguments.source), arguments)
