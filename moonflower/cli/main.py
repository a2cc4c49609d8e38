"""Command line: the single place where exceptions become exit statuses and one-line messages."""

import argparse
import contextlib
import functools
import os
import select
import signal
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from moonflower import __version__
from moonflower.cli.clusters import CLUSTER_HELP, chosen_clusters, default_command, worst
from moonflower.cli.commands import (
    list_backups,
    preflight,
    print_status,
    prune_now,
    report_health,
    report_health_of,
    restore_backup,
    sync_destinations,
    verify_backups,
)
from moonflower.cli.destinations import FROM_HELP, add_sync_command
from moonflower.cli.physical import COMMANDS as PHYSICAL_COMMANDS
from moonflower.cli.physical import (
    add_physical_commands,
    execute_physical,
    postgres_needs,
    require_databases,
)
from moonflower.cli.prune import add_prune_command, retention_overrides
from moonflower.config.loader import load_config
from moonflower.config.model import Config
from moonflower.core.errors import ConfigError, MoonflowerError, RestoreError, Terminated
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import cluster_context, log, setup_logging
from moonflower.core.redact import redactor
from moonflower.core.shutdown import Shutdown, shutdown
from moonflower.daemon.run import run_scheduler
from moonflower.jobs.backup import backup_once
from moonflower.logical.restore_jobs import MAX_RESTORE_JOBS
from moonflower.storage.destination import destinations_of

DESCRIPTION = """\
Back up PostgreSQL databases to S3-compatible storage.

Configuration comes from environment variables (PG_*, S3_*, ...), optionally a TOML
file (--config or MOONFLOWER_CONFIG), and these flags, in increasing precedence.
Without a command, Moonflower behaves like the original image: with SCHEDULE set it
runs backups on that cron schedule (like `run`), otherwise one backup now (like `backup`).
"""

ALLOW_UNVERIFIED_HELP = (
    "also accept backups without Moonflower's recorded checksum (the original image's, "
    "copies) and, with encryption configured, unencrypted ones; a warning says why"
)
EPILOG = """\
exit status: 0 every database backed up, 1 a backup failed, 2 bad configuration,
130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""


def positive_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def add_global_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """Options every command takes; `default` SUPPRESS keeps a value given before it."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=default,
        help="TOML configuration file (MOONFLOWER_CONFIG)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default,
        help="log line format (LOG_FORMAT)",
    )
    parser.add_argument(
        "--traceback",
        action="store_true",
        default=False if default is None else default,
        help="show the full traceback of unexpected errors",
    )
    parser.add_argument("--cluster", metavar="NAME", default=default, help=CLUSTER_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moonflower",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"moonflower {__version__}")
    add_global_options(parser)
    after_command = argparse.ArgumentParser(add_help=False)
    add_global_options(after_command, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Global options work after the command too (`moonflower backup --config x.toml`).
    add_command = functools.partial(commands.add_parser, parents=[after_command])
    backup = add_command(
        "backup",
        help="back up every configured database once, now",
        description="Back up every configured database once, now.",
    )
    backup.add_argument(
        "databases", nargs="*", metavar="DATABASE", help="databases to back up (PG_DATABASES)"
    )
    add_prune_command(add_command)
    listing = add_command(
        "list",
        help="list the backups under S3_PATH, newest first",
        description="List Moonflower's backups under S3_PATH, newest first, including the "
        "original image's (.sql.gz, .sql.gz.gpg, .sql.gpg).",
    )
    listing.add_argument("list_databases", nargs="*", metavar="DATABASE", help="only these")
    listing.add_argument("--json", action="store_true", help="print a JSON array for scripts")
    listing.add_argument("--from", dest="source", metavar="NAME", help=FROM_HELP)
    listing.add_argument(
        "--all-destinations",
        action="store_true",
        help="list every destination's backups (the primary's and each replica's)",
    )
    restore = add_command(
        "restore",
        help="restore a backup into a database on the configured server",
        description="Restore the newest backup of DATABASE (or the one named by --backup) "
        "into TARGET on the configured server. Before the server is touched, the download is "
        "checked against the SHA-256 recorded at upload and read to the end to prove it is "
        "complete; TARGET is created when missing. The SQL is loaded by psql in restricted "
        "mode, so no psql meta-command in the backup can run.",
    )
    restore.add_argument("restore_database", metavar="DATABASE", help="whose backup to restore")
    restore.add_argument("--into", required=True, metavar="TARGET", help="database to load into")
    restore.add_argument("--backup", metavar="KEY", help="a specific backup's object key")
    restore.add_argument("--from", dest="source", metavar="NAME", help=FROM_HELP)
    restore.add_argument(
        "--drop-existing",
        action="store_true",
        help="drop and recreate TARGET when it is not empty (without it, a non-empty TARGET "
        "is refused, never merged into)",
    )
    restore.add_argument(
        "--globals",
        action="store_true",
        help="first load the newest globals backup (PG_GLOBALS): tablespaces, and the roles "
        "the server lacks; existing roles are left as they are",
    )
    restore.add_argument("--allow-unverified", action="store_true", help=ALLOW_UNVERIFIED_HELP)
    restore.add_argument(
        "--overwrite-roles",
        action="store_true",
        help="with --globals: also apply the backup's attributes, passwords and memberships to "
        "roles the server already has (by default only missing roles are created)",
    )
    restore.add_argument(
        "--no-owner",
        action="store_true",
        help="custom-format backups: do not restore ownership (objects belong to PG_USER)",
    )
    restore.add_argument(
        "--jobs",
        type=positive_number,
        default=None,
        metavar="N",
        help=f"custom-format backups: pg_restore jobs (default: one per core, at most "
        f"{MAX_RESTORE_JOBS})",
    )
    verify = add_command(
        "verify",
        help="check that backups are complete and restorable",
        description="For the newest backup of each database (or every backup with --all): "
        "download, check the recorded checksum, decrypt, decompress to the end and check that "
        "it is complete (pg_restore reads custom-format archives whole). With --restore, also "
        "load it into a scratch database that is dropped afterwards. Exits 1 if any backup "
        "fails.",
    )
    verify.add_argument("verify_databases", nargs="*", metavar="DATABASE", help="only these")
    verify.add_argument("--all", action="store_true", help="every backup, not just the newest")
    verify.add_argument(
        "--restore", action="store_true", help="also load each into a scratch database"
    )
    verify.add_argument("--allow-unverified", action="store_true", help=ALLOW_UNVERIFIED_HELP)
    verify.add_argument("--from", dest="source", metavar="NAME", help=FROM_HELP)
    verify.add_argument(
        "--physical",
        action="store_true",
        help="the newest base backup instead: checksum, pg_verifybackup, the WAL chain after "
        "it without a gap; with --restore, a trial recovery by a temporary server",
    )
    add_sync_command(add_command)
    add_command(
        "check",
        help="check configuration, database, bucket, key and webhooks without backing up",
        description="Preflight: validate the configuration, connect to each database (and pick "
        "its pg_dump), reach the bucket and write and delete a probe object, import the "
        "encryption key, resolve webhook hosts. Exit 0 only if every check passes. Makes no "
        "backup and calls no webhook.",
    )
    add_command(
        "health",
        help="exit 0 if the last run succeeded (or none yet and the scheduler runs)",
        description="For a container HEALTHCHECK: reads the status file in BACKUP_STATE_DIR.",
    )
    add_command("status", help="show the scheduler's state, the last and the next run")
    add_physical_commands(add_command)
    add_command(
        "run",
        help="run backups on the cron schedule in SCHEDULE until stopped (and stream the "
        "WAL with WAL_STREAM=on)",
        description="Run backups on the cron schedule in SCHEDULE (local time) until SIGTERM "
        "or SIGINT. BACKUP_ON_START=true also runs one backup at start-up. With WAL_STREAM=on "
        "the WAL is streamed to S3_PATH/wal/ meanwhile, and BASEBACKUP_SCHEDULE takes base "
        "backups (point-in-time recovery). A WAL-only set-up leaves SCHEDULE out and needs "
        "no PG_DATABASES: PG_HOST, PG_USER (with REPLICATION), PG_PASSWORD and the S3 "
        "settings are enough. The WAL stream is restarted whenever it fails; `health` "
        'reports it ("streaming WAL, last WAL upload 3 s ago"), a gap in it, and a failed '
        "or overdue base backup.",
    )
    return parser


NOTIFYING = (None, "backup", "run", "check")
"""The commands that send notifications (or check that they could)."""


def flag_overrides(arguments: argparse.Namespace) -> dict[str, tuple[str, object]]:
    overrides: dict[str, tuple[str, object]] = {}
    overrides.update(retention_overrides(arguments))
    if getattr(arguments, "databases", None):
        overrides["PG_DATABASES"] = ("databases", list(arguments.databases))
    if arguments.log_format:
        overrides["LOG_FORMAT"] = ("log-format", arguments.log_format)
    return overrides


def execute(
    arguments: argparse.Namespace, shutdown: Shutdown, environ: Mapping[str, str]
) -> ExitStatus:
    needs = postgres_needs(arguments)
    config = load_config(
        environ,
        arguments.config,
        flag_overrides(arguments),
        **({} if needs is None else {"postgres_needs": needs}),
        notifying=arguments.command in NOTIFYING,
    )
    command = arguments.command or default_command(config)
    targets = chosen_clusters(config, command, arguments.cluster)
    for target in targets:
        require_databases(target, arguments.command)
    setup_logging(config.logging.format, config.logging.level)
    for warning in dict.fromkeys(w for target in (config, *targets) for w in target.warnings):
        log.warning("%s", warning)
    if command == "run" and config.clusters:
        from moonflower.daemon.clusters import run_clusters

        return run_clusters(config, targets, shutdown)
    if command == "health" and config.clusters:
        return report_health_of(targets)
    statuses = []
    for target in targets:
        with cluster_context(target.cluster):
            statuses.append(execute_one(command, target, arguments, shutdown))
    return worst(statuses)


def execute_one(
    command: str, config: Config, arguments: argparse.Namespace, shutdown: Shutdown
) -> ExitStatus:
    """One command with one configuration: the one server's, or one cluster's."""
    destinations = destinations_of(config)
    if command == "run":
        return run_scheduler(config, shutdown, destinations)
    with shutdown.working():
        if command == "prune":
            return prune_now(config, destinations, arguments)
        if command == "list":
            return list_backups(config, destinations, arguments)
        if command == "restore":
            return restore_backup(config, destinations, arguments)
        if command == "verify":
            return verify_backups(config, destinations, arguments)
        if command == "check":
            return preflight(config, destinations)
        if command == "sync":
            return sync_destinations(config, destinations, arguments)
        if command == "health":
            return report_health(config)
        if command == "status":
            return print_status(config)
        if command in PHYSICAL_COMMANDS:
            return execute_physical(command, config, destinations, arguments)
    with shutdown.working():
        return backup_once(config, destinations)


OUTPUT_CLOSED = 128 + signal.SIGPIPE
"""The reader of standard output went away (`moonflower list | head -3`): end quietly, as
a Unix tool killed by SIGPIPE does (entry.leave ends the process with that signal)."""


def output_closed() -> bool:
    """Is standard output a pipe whose reader has gone? Then writing to it broke, not the
    work (a broken pipe to a child process is a real failure)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError):
        return False
    if not any(event & (select.POLLERR | select.POLLHUP) for _, event in events):
        return False
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run Moonflower; `environ` holds the settings (moonflower.cli.entry takes them out of
    os.environ before the libraries load)."""
    arguments = build_parser().parse_args(argv)
    shutdown.install()
    try:
        return int(execute(arguments, shutdown, os.environ if environ is None else environ))
    except ConfigError as error:
        for problem in error.problems:
            print(f"moonflower: {problem}", file=sys.stderr)
        return int(ExitStatus.BAD_CONFIGURATION)
    except KeyboardInterrupt:
        print("moonflower: interrupted (SIGINT), backup abandoned", file=sys.stderr)
        return int(ExitStatus.INTERRUPTED)
    except Terminated:
        print("moonflower: terminated (SIGTERM), backup abandoned", file=sys.stderr)
        return int(ExitStatus.TERMINATED)
    except RestoreError as error:
        print(f"moonflower: restore failed at step {redactor.mask(str(error))}", file=sys.stderr)
        return int(ExitStatus.BACKUP_FAILED)
    except MoonflowerError as error:
        print(f"moonflower: {redactor.mask(str(error))}", file=sys.stderr)
        return int(ExitStatus.BACKUP_FAILED)
    except BrokenPipeError:
        if not output_closed():
            raise
        return OUTPUT_CLOSED
    except Exception as error:
        if arguments.traceback:
            print(redactor.mask(traceback.format_exc()), file=sys.stderr)
        message = redactor.mask(str(error)) or type(error).__name__
        print(f"moonflower: unexpected error: {message}", file=sys.stderr)
        return int(ExitStatus.BACKUP_FAILED)
