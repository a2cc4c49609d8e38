"""The commands of physical backups: base backups, the WAL archive, and cluster restores."""

import argparse
import contextlib
import os
import shlex
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pendulum

from moonflower.config.model import Config
from moonflower.core.errors import ConfigError
from moonflower.core.exit_status import ExitStatus
from moonflower.core.logs import log
from moonflower.postgres.wal_names import parse_lsn

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moonflower.pitr.recovery_target import RecoveryTarget
    from moonflower.pitr.recovery_window import Follow, Window
    from moonflower.pitr.restore_cluster import ClusterRestore, Prepared
    from moonflower.reporting.jobs import Outcome
    from moonflower.storage.destination import Destination


def wal_push(config: Config, destinations: "list[Destination]", path: Path) -> ExitStatus:
    """archive_command: `moonflower wal-push %p` (run in the data directory): the primary,
    then every replica."""
    from moonflower.pitr.archive_writer import honour_for_push
    from moonflower.pitr.wal_archive import WalArchive
    from moonflower.proc.gpg import Encryption

    honour_for_push(config)
    with Encryption.open(config.encryption, config.backup.spool_dir) as encryption:
        WalArchive(config, destinations[0], encryption, replicas=destinations[1:]).push(path)
    return ExitStatus.OK


def wal_fetch(
    config: Config, destinations: "list[Destination]", name: str, target: Path
) -> ExitStatus:
    """restore_command: `moonflower wal-fetch %f %p`, from the primary, else the first
    replica that has it; exit 1 when none does (the normal end of a recovery)."""
    from moonflower.pitr.wal_archive import WalArchive
    from moonflower.proc.gpg import Decryption

    with Decryption.open(config.encryption, config.backup.spool_dir) as decryption:
        archive = WalArchive(config, destinations[0], None, fallbacks=destinations[1:])
        if archive.fetch(name, target, decryption):
            return ExitStatus.OK
    log.info("%s is not in the archive", name)
    return ExitStatus.BACKUP_FAILED


def steps_taken(seconds: dict[str, float]) -> str:
    """`9.1 s (download 1.2 s, checksum 0.3 s, ...)`."""
    parts = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    return f"{sum(seconds.values()):.1f} s ({parts})"


def moonflower_command(config_path: Path | None) -> str:
    """How the server's restore_command calls Moonflower (a shell command line): this
    checkout's entrypoint, else the one on PATH, with the --config file when one was given
    (the server's environment does not hold Moonflower's settings)."""
    entrypoint = Path(__file__).resolve().parents[2] / "bin" / "moonflower"
    program = str(entrypoint) if entrypoint.is_file() else shutil.which("moonflower")
    argv = [program or "moonflower"]
    if config_path is not None:
        argv += ["--config", str(config_path.absolute())]
    return shlex.join(argv)


def recovery_target(arguments: argparse.Namespace) -> "RecoveryTarget":
    from moonflower.pitr.recovery_target import RecoveryTarget

    timeline = followed_timeline(arguments.timeline)
    if arguments.time is not None:
        try:
            moment = pendulum.parse(arguments.time, tz="UTC")
        except (ValueError, pendulum.parsing.exceptions.ParserError):
            moment = None
        if not isinstance(moment, pendulum.DateTime):
            raise ConfigError(
                [
                    f'--time: "{arguments.time}" is not a date and time, such as '
                    '"2026-11-26 14:03:07+00" (UTC when no offset is given)'
                ]
            )
        return RecoveryTarget(time=moment, timeline=timeline)
    if arguments.lsn is not None:
        try:
            return RecoveryTarget(lsn=parse_lsn(arguments.lsn), timeline=timeline)
        except ValueError as error:
            raise ConfigError([f"--lsn: {error}"]) from None
    return RecoveryTarget(timeline=timeline)


def followed_timeline(text: str | None) -> "Follow":
    from moonflower.pitr.recovery_window import FOLLOW_LATEST

    if text is None or text == FOLLOW_LATEST:
        return text
    if text.isascii() and text.isdigit() and 0 < int(text) < 2**32:
        return int(text)
    raise ConfigError([f'--timeline: "{text}" is not a timeline number or "latest"'])


def wal_fetch_command(arguments: argparse.Namespace) -> str | None:
    if not arguments.wal_fetch_command:
        return None
    if arguments.config is None:
        raise ConfigError(
            [
                "--config: --wal-fetch-command needs the settings in a file (--config FILE) "
                "that the server's user can read: the server has none of Moonflower's "
                "environment, so a restore_command relying on it cannot fetch any WAL"
            ]
        )
    return moonflower_command(arguments.config)


def restore_cluster(
    config: Config, destinations: "list[Destination]", arguments: argparse.Namespace
) -> ExitStatus:
    """From the primary, else from each replica in turn when the primary cannot be reached,
    lacks the base backups, or holds a copy that fails its checks; a WAL file missing or
    damaged where the base backup came from is fetched from the others. `--from` names
    one destination and never falls back."""
    from moonflower.pitr.base_unpack import empty_directory
    from moonflower.pitr.recovery_run import run_recovery, server_account
    from moonflower.pitr.recovery_target import check_reached
    from moonflower.pitr.restore_cluster import ClusterRestore, hand_over, start_command
    from moonflower.pitr.wal_fetch_probe import probe_wal_fetch
    from moonflower.storage.destination import with_fallback

    directory = Path(arguments.to).absolute()
    target = recovery_target(arguments)
    fetch_command = wal_fetch_command(arguments)
    account = server_account(directory, arguments.run_as, required=arguments.start)

    def probe(window: "Window") -> None:
        if fetch_command is not None:
            probe_wal_fetch(config, fetch_command, arguments.config, window, account)

    def prepared_from(destination: "Destination") -> "tuple[ClusterRestore, Prepared]":
        others = [other for other in destinations if other is not destination]
        restore = ClusterRestore(
            config, destination, directory, target, arguments.keep_archiving, others
        )
        return restore, restore.prepare(fetch_command, before_filling=probe)

    restore, prepared = with_fallback(destinations, prepared_from, "restore-cluster")
    hand_over(directory, account)
    major = prepared.base.server_major
    if not arguments.start:
        log.info("restore-cluster took %s", steps_taken(restore.seconds))
        command = start_command(directory, major, config.postgres.pg_dump_path)
        log.info(
            "ready: recovery to %s runs when it starts; this cannot collide with a server "
            "already on this host (no TCP port: connect with psql -h %s): %s",
            target.describe(),
            directory,
            command,
        )
        print(command)
        return ExitStatus.OK
    started = time.monotonic()
    try:
        reached = run_recovery(directory, major, config.postgres.pg_dump_path, account)
        restore.seconds["recovery"] = time.monotonic() - started
        log.info("restore-cluster took %s", steps_taken(restore.seconds))
        log.info("recovered: %s, new timeline %s", reached.shown, reached.timeline or "?")
        if reached.stop_reason:
            log.info("%s", reached.stop_reason)
        check_reached(target, prepared.base, prepared.window, reached)
    except BaseException:
        empty_directory(directory)  # a second restore-cluster needs it empty
        log.error("the restore failed; %s was emptied", directory)
        raise
    log.info("recovered to %s; the server is stopped and %s is ready", target.describe(), directory)
    return ExitStatus.OK


@contextlib.contextmanager
def reachable(spool: Path, for_others: bool) -> "Iterator[None]":
    """While a trial server runs as a user of its own, that user must be able to pass
    through the spool to its scratch directory: execute (not read) for others is added if
    missing, and taken back after. Every file in the spool is 0600, its directories 0700."""
    mode = spool.stat().st_mode
    missing = for_others and not mode & stat.S_IXOTH
    if missing:
        spool.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        if missing:
            spool.chmod(stat.S_IMODE(mode))


def ancestors_open(path: Path) -> bool:
    """Can any user pass through every directory above `path`?"""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.absolute().parents)


def verify_physical(
    config: Config, destination: "Destination", trial_restore: bool, outcome: "Outcome"
) -> ExitStatus:
    """The newest base backup: downloaded, checked, extracted and verified against its
    manifest in a scratch directory; the WAL chain after it checked for gaps; with
    `trial_restore`, recovered to the newest WAL by a temporary server."""
    from moonflower.pitr.recovery_run import private_account, run_recovery
    from moonflower.pitr.recovery_target import RecoveryTarget
    from moonflower.pitr.restore_cluster import ClusterRestore, hand_over
    from moonflower.proc.spool import owned_prefix

    spool = config.backup.spool_dir
    account = None
    if trial_restore and os.geteuid() == 0:
        account = private_account()
        log.info("the trial recovery runs as %s, a user id of its own", account.name)
    place = spool
    if account is not None and not ancestors_open(spool):
        place = Path(tempfile.gettempdir())
        log.info("%s lies under a directory closed to other users: scratch in %s", spool, place)
    with (
        tempfile.TemporaryDirectory(prefix=owned_prefix(place), dir=place) as scratch,
        reachable(place, account is not None),
    ):
        Path(scratch).chmod(0o711)  # the server's user must reach the data directory
        directory = Path(scratch) / "data"
        prepared = ClusterRestore(config, destination, directory, RecoveryTarget()).prepare(
            fetch_wal=trial_restore
        )
        if prepared.window.gap_after is not None:
            message = (
                f"base backup {prepared.base.label}: the WAL chain after it breaks at "
                f"{prepared.window.gap_after}"
            )
            log.error("%s", message)
            outcome.fail(message)
            return ExitStatus.BACKUP_FAILED
        log.info(
            "base backup %s verified; its WAL reaches %s without a gap",
            prepared.base.label,
            prepared.window.end.isoformat(),
        )
        if not trial_restore:
            return ExitStatus.OK
        hand_over(directory, account)
        major = prepared.base.server_major
        reached = run_recovery(directory, major, config.postgres.pg_dump_path, account)
        log.info("trial recovery of %s ended: %s", prepared.base.label, reached.shown)
    return ExitStatus.OK
