"""Command line: the single place where exceptions become exit statuses and one-line messages."""

import argparse
import json
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console

from moonflower import __version__
from moonflower.backup import BackupRun, RunReport
from moonflower.catalog import Catalog
from moonflower.check import Preflight
from moonflower.config import Config, load_config
from moonflower.cron import EXAMPLES
from moonflower.errors import ConfigError, MoonflowerError, Terminated
from moonflower.gpg import Encryption
from moonflower.lifecycle import Shutdown, reap_orphans, shutdown
from moonflower.logs import log, setup_logging
from moonflower.prune import Pruner
from moonflower.redact import redactor
from moonflower.report import (
    print_backup_list,
    print_checks,
    print_prune_table,
    print_state,
    print_summary,
    print_verify_table,
)
from moonflower.restore import RestoreError, Restorer
from moonflower.scheduler import Runner
from moonflower.state import StateFile, health
from moonflower.state import now as state_now
from moonflower.status import ExitStatus
from moonflower.storage import Storage
from moonflower.verify import Verifier
from moonflower.webhooks import Webhooks

DESCRIPTION = """\
Back up PostgreSQL databases to S3-compatible storage.

Configuration comes from environment variables (PG_*, S3_*, ...), optionally a TOML
file (--config or MOONFLOWER_CONFIG), and these flags, in increasing precedence.
Without a command, Moonflower behaves like the original image: with SCHEDULE set it
runs backups on that cron schedule (like `run`), otherwise one backup now (like `backup`).
"""

SUMMARY_WIDTH = 160
EPILOG = """\
exit status: 0 every database backed up, 1 a backup failed, 2 bad configuration,
130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moonflower",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"moonflower {__version__}")
    parser.add_argument(
        "--config", type=Path, metavar="PATH", help="TOML configuration file (MOONFLOWER_CONFIG)"
    )
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="log line format (LOG_FORMAT)"
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of unexpected errors"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    backup = commands.add_parser(
        "backup",
        help="back up every configured database once, now",
        description="Back up every configured database once, now.",
    )
    backup.add_argument(
        "databases", nargs="*", metavar="DATABASE", help="databases to back up (PG_DATABASES)"
    )
    prune = commands.add_parser(
        "prune",
        help="delete backups older than S3_EXPIRES_IN (never the newest of a database)",
        description="Delete backups older than S3_EXPIRES_IN, every version of them. The "
        "newest backup of each database is always kept; versions still under Object Lock are "
        "skipped and retried by a later prune. Only keys directly under S3_PATH that follow "
        "Moonflower's naming are considered.",
    )
    prune.add_argument(
        "prune_databases", nargs="*", metavar="DATABASE", help="only these databases"
    )
    prune.add_argument("--dry-run", action="store_true", help="show what would be deleted")
    listing = commands.add_parser(
        "list",
        help="list the backups under S3_PATH, newest first",
        description="List Moonflower's backups under S3_PATH, newest first, including the "
        "original image's (.sql.gz, .sql.gz.gpg, .sql.gpg).",
    )
    listing.add_argument("list_databases", nargs="*", metavar="DATABASE", help="only these")
    listing.add_argument("--json", action="store_true", help="print a JSON array for scripts")
    restore = commands.add_parser(
        "restore",
        help="restore a backup into a database on the configured server",
        description="Restore the newest backup of DATABASE (or the one named by --backup) "
        "into TARGET on the configured server. The download is checked against the SHA-256 "
        "recorded at upload before the server is touched; TARGET is created when missing.",
    )
    restore.add_argument("restore_database", metavar="DATABASE", help="whose backup to restore")
    restore.add_argument("--into", required=True, metavar="TARGET", help="database to load into")
    restore.add_argument("--backup", metavar="KEY", help="a specific backup's object key")
    restore.add_argument(
        "--drop-existing",
        action="store_true",
        help="drop and recreate TARGET when it already holds tables",
    )
    restore.add_argument(
        "--globals",
        action="store_true",
        help="first load the newest globals backup (roles, tablespaces; PG_GLOBALS)",
    )
    restore.add_argument(
        "--no-owner",
        action="store_true",
        help="custom-format backups: do not restore ownership (objects belong to PG_USER)",
    )
    verify = commands.add_parser(
        "verify",
        help="check that backups are complete and restorable",
        description="For the newest backup of each database (or every backup with --all): "
        "download, check the recorded checksum, decrypt, decompress to the end and check that "
        "the SQL is complete. With --restore, also load it into a scratch database that is "
        "dropped afterwards. Exits 1 if any backup fails.",
    )
    verify.add_argument("verify_databases", nargs="*", metavar="DATABASE", help="only these")
    verify.add_argument("--all", action="store_true", help="every backup, not just the newest")
    verify.add_argument(
        "--restore", action="store_true", help="also load each into a scratch database"
    )
    commands.add_parser(
        "check",
        help="check configuration, database, bucket, key and webhooks without backing up",
        description="Preflight: validate the configuration, connect to each database (and pick "
        "its pg_dump), reach the bucket and write and delete a probe object, import the "
        "encryption key, resolve webhook hosts. Exit 0 only if every check passes. Makes no "
        "backup and calls no webhook.",
    )
    commands.add_parser(
        "health",
        help="exit 0 if the last run succeeded (or none yet and the scheduler runs)",
        description="For a container HEALTHCHECK: reads the status file in BACKUP_STATE_DIR.",
    )
    commands.add_parser("status", help="show the scheduler's state, the last and the next run")
    commands.add_parser(
        "run",
        help="run backups on the cron schedule in SCHEDULE until stopped",
        description="Run backups on the cron schedule in SCHEDULE (local time) until SIGTERM "
        "or SIGINT. BACKUP_ON_START=true also runs one backup at start-up.",
    )
    return parser


def flag_overrides(arguments: argparse.Namespace) -> dict[str, tuple[str, object]]:
    overrides: dict[str, tuple[str, object]] = {}
    if getattr(arguments, "databases", None):
        overrides["PG_DATABASES"] = ("databases", list(arguments.databases))
    if arguments.log_format:
        overrides["LOG_FORMAT"] = ("log-format", arguments.log_format)
    return overrides


def backup_once(config: Config) -> ExitStatus:
    """One run with its webhooks and its line in the status file."""
    started = state_now()
    status = ExitStatus.BACKUP_FAILED
    try:
        status = monitored_backup(config)
        return status
    finally:
        record_run(config, started, status)


def record_run(config: Config, started: str, status: ExitStatus) -> None:
    try:
        StateFile(config.backup.state_directory).run_finished(started, int(status))
    except OSError as error:
        log.warning("could not write the status file: %s", error)


def monitored_backup(config: Config) -> ExitStatus:
    """One run with its webhooks: start, then success or failure with the run's log."""
    with Webhooks(config.webhooks).monitor() as outcome:
        with Encryption.open(config.encryption) as encryption:
            report = BackupRun(config, encryption).run()
        if config.logging.format == "text":
            print_summary(report, output_console())
        if report.ok:
            log.info("backup finished: %d database(s) backed up", len(report.results))
            return ExitStatus.OK
        failed = [result.database for result in report.failures]
        if report.error:
            log.error("backup run failed: %s", report.error)
        if failed:
            log.error("backup failed for %d database(s): %s", len(failed), ", ".join(failed))
        outcome.fail(failure_reason(report))
        return ExitStatus.BACKUP_FAILED


def failure_reason(report: RunReport) -> str:
    reasons = [report.error] if report.error else []
    reasons += [f"{result.database}: {result.error}" for result in report.failures]
    return "; ".join(reason for reason in reasons if reason)


def output_console() -> Console:
    return Console(width=None if sys.stdout.isatty() else SUMMARY_WIDTH)


def prune_now(config: Config, databases: list[str] | None, dry_run: bool) -> ExitStatus:
    if config.s3.expires_in is None:
        raise ConfigError(['S3_EXPIRES_IN: required by `moonflower prune`, e.g. "30 days"'])
    storage = Storage(config.s3)
    storage.check_bucket()
    report = Pruner(storage, config.s3).prune(databases, dry_run=dry_run)
    print_prune_table(report, dry_run, output_console())
    return ExitStatus.OK if report.ok else ExitStatus.BACKUP_FAILED


def preflight(config: Config) -> ExitStatus:
    checks = Preflight(config).run()
    print_checks(checks, output_console())
    return ExitStatus.OK if all(check.ok for check in checks) else ExitStatus.BACKUP_FAILED


def report_health(config: Config) -> ExitStatus:
    verdict = health(StateFile(config.backup.state_directory).read())
    print(("healthy: " if verdict.ok else "unhealthy: ") + verdict.reason)
    return ExitStatus.OK if verdict.ok else ExitStatus.BACKUP_FAILED


def print_status(config: Config) -> ExitStatus:
    state = StateFile(config.backup.state_directory)
    print_state(state.read(), health(state.read()), state.path, output_console())
    return ExitStatus.OK


def storage_for(config: Config) -> Storage:
    storage = Storage(config.s3)
    storage.check_bucket()
    return storage


def list_backups(config: Config, databases: list[str], as_json: bool) -> ExitStatus:
    backups = Catalog(storage_for(config), config.s3).backups(databases or None)
    if as_json:
        print(json.dumps([info.as_json() for info in backups], indent=2, ensure_ascii=False))
    else:
        print_backup_list(backups, output_console())
    return ExitStatus.OK


def restore_backup(config: Config, arguments: argparse.Namespace) -> ExitStatus:
    restorer = Restorer(config, storage_for(config))
    try:
        restorer.restore(
            arguments.restore_database,
            arguments.into,
            arguments.backup,
            arguments.drop_existing,
            with_globals=arguments.globals,
            no_owner=arguments.no_owner,
        )
    except RestoreError as error:
        log.error("restore failed at step %s", error)
        return ExitStatus.BACKUP_FAILED
    return ExitStatus.OK


def verify_backups(config: Config, arguments: argparse.Namespace) -> ExitStatus:
    verifier = Verifier(config, storage_for(config))
    backups = verifier.select(arguments.verify_databases, arguments.all)
    if not backups:
        log.error("no backups found to verify")
        return ExitStatus.BACKUP_FAILED
    results = verifier.verify(backups, trial_restore=arguments.restore)
    print_verify_table(results, output_console())
    failed = [result.info.key for result in results if not result.ok]
    if failed:
        log.error("%d backup(s) failed verification: %s", len(failed), ", ".join(failed))
        return ExitStatus.BACKUP_FAILED
    return ExitStatus.OK


def run_scheduler(config: Config, shutdown: Shutdown) -> ExitStatus:
    if config.schedule is None:
        raise ConfigError([f"SCHEDULE: required by `moonflower run`, e.g. {EXAMPLES}"])
    with Encryption.open(config.encryption):
        pass  # an unusable key stops us now (exit 2), not at the first fire

    def guarded_run() -> ExitStatus:
        with shutdown.working():
            return backup_once(config)

    state = StateFile(config.backup.state_directory)
    state.scheduler_started(config.schedule.expression)
    runner = Runner(
        config.schedule,
        run_once=guarded_run,
        wait=shutdown.requested.wait,
        between_runs=reap_orphans,
        on_next=state.next_run,
    )
    return runner.run_forever(run_at_start=config.backup.on_start)


def execute(
    arguments: argparse.Namespace, shutdown: Shutdown, environ: Mapping[str, str]
) -> ExitStatus:
    config = load_config(environ, arguments.config, flag_overrides(arguments))
    setup_logging(config.logging.format, config.logging.level)
    for warning in config.warnings:
        log.warning("%s", warning)
    command = arguments.command or ("run" if config.schedule else "backup")
    if command == "run":
        return run_scheduler(config, shutdown)
    with shutdown.working():
        if command == "prune":
            return prune_now(config, arguments.prune_databases or None, arguments.dry_run)
        if command == "list":
            return list_backups(config, arguments.list_databases, arguments.json)
        if command == "restore":
            return restore_backup(config, arguments)
        if command == "verify":
            return verify_backups(config, arguments)
        if command == "check":
            return preflight(config)
        if command == "health":
            return report_health(config)
        if command == "status":
            return print_status(config)
    with shutdown.working():
        return backup_once(config)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run Moonflower; `environ` holds the settings (moonflower.entry takes them out of
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
    except MoonflowerError as error:
        print(f"moonflower: {redactor.mask(str(error))}", file=sys.stderr)
        return int(ExitStatus.BACKUP_FAILED)
    except Exception as error:
        if arguments.traceback:
            print(redactor.mask(traceback.format_exc()), file=sys.stderr)
        message = redactor.mask(str(error)) or type(error).__name__
        print(f"moonflower: unexpected error: {message}", file=sys.stderr)
        return int(ExitStatus.BACKUP_FAILED)
