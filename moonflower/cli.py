"""Command line: the single place where exceptions become exit statuses and one-line messages."""

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from rich.console import Console

from moonflower import __version__
from moonflower.backup import BackupRun
from moonflower.config import Config, load_config
from moonflower.errors import ConfigError, MoonflowerError, Terminated
from moonflower.gpg import Encryption
from moonflower.logs import log, setup_logging
from moonflower.redact import redactor
from moonflower.report import print_summary
from moonflower.status import ExitStatus

DESCRIPTION = """\
Back up PostgreSQL databases to S3-compatible storage.

Configuration comes from environment variables (PG_*, S3_*, ...), optionally a TOML
file (--config or MOONFLOWER_CONFIG), and these flags, in increasing precedence.
Without a command, Moonflower runs one backup now, like the original image.
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
    return parser


def flag_overrides(arguments: argparse.Namespace) -> dict[str, tuple[str, object]]:
    overrides: dict[str, tuple[str, object]] = {}
    if getattr(arguments, "databases", None):
        overrides["PG_DATABASES"] = ("databases", list(arguments.databases))
    if arguments.log_format:
        overrides["LOG_FORMAT"] = ("log-format", arguments.log_format)
    return overrides


def run_backup(config: Config, encryption: Encryption | None) -> ExitStatus:
    report = BackupRun(config, encryption).run()
    if config.logging.format == "text":
        print_summary(report, Console(width=None if sys.stdout.isatty() else SUMMARY_WIDTH))
    if report.ok:
        log.info("backup finished: %d database(s) backed up", len(report.results))
        return ExitStatus.OK
    failed = [result.database for result in report.failures]
    if report.error:
        log.error("backup run failed: %s", report.error)
    if failed:
        log.error("backup failed for %d database(s): %s", len(failed), ", ".join(failed))
    return ExitStatus.BACKUP_FAILED


def execute(arguments: argparse.Namespace) -> ExitStatus:
    config = load_config(os.environ, arguments.config, flag_overrides(arguments))
    setup_logging(config.logging.format, config.logging.level)
    for warning in config.warnings:
        log.warning("%s", warning)
    with Encryption.open(config.encryption) as encryption:
        return run_backup(config, encryption)


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return int(execute(arguments))
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
