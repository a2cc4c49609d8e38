"""Restore a whole cluster to a point in time: the newest base backup before the target,
checked and extracted into an empty directory, the WAL up to the newest archived segment
beside it in `pg_wal`, and recovery settings that stop at the target and promote.

The directory then starts with the stock `pg_ctl start` of the same major version; nothing
of Moonflower is needed on the server's side (unless `--wal-fetch-command` asks for it).
"""

import contextlib
import contextvars
import os
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.physical import base_backups, wal_archive
from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError, RestoreError
from moonflower.core.logs import log, step
from moonflower.core.sizes import human_size
from moonflower.pitr.base_chain import chain_of, combine_area
from moonflower.pitr.base_unpack import (
    empty_directory,
    unpack_streamed,
)
from moonflower.pitr.recovery_run import Account, socket_fits
from moonflower.pitr.recovery_settings import ARCHIVING, make_safe, write_private
from moonflower.pitr.recovery_target import RecoveryTarget, check_reachable, choose_base
from moonflower.pitr.recovery_window import Window, recoverable_window
from moonflower.pitr.wal_archive import WalArchive
from moonflower.postgres.clients import exact_client
from moonflower.proc import runner, untar
from moonflower.proc.codec import decoding_stages, decoding_stages_for
from moonflower.proc.feeder import CHUNK_BYTES, StreamBroken
from moonflower.proc.gpg import Decryption
from moonflower.proc.runner import Stage
from moonflower.storage.destination import Destination
from moonflower.storage.fetch import Expected, fetch_checked
from moonflower.storage.gateway import Storage

SETTINGS_MARK = "# Added by moonflower restore-cluster"
WAL_FETCH_JOBS = 4
"""Segments downloaded and decoded at once: each is a small request and a short pipeline."""


@dataclass(frozen=True)
class Prepared:
    directory: Path
    base: BaseBackupRecord
    window: Window
    segments: int


def check_empty_directory(directory: Path) -> None:
    try:
        occupied = directory.exists() and (not directory.is_dir() or any(directory.iterdir()))
    except OSError as error:
        raise RestoreError("prepare", f"{directory}: {error.strerror}") from None
    if occupied:
        raise RestoreError("prepare", f"{directory} is not an empty directory; it was left alone")


class ClusterRestore:
    def __init__(
        self,
        config: Config,
        destination: Destination,
        directory: Path,
        target: RecoveryTarget,
        keep_archiving: bool = False,
        fallbacks: list[Destination] | None = None,
    ) -> None:
        self.config = config
        self.destination = destination
        self.fallbacks = fallbacks or []
        """Where a WAL file missing or damaged on `destination` is fetched from."""
        self.keep_archiving = keep_archiving
        self.directory = directory
        self.target = target
        self.seconds: dict[str, float] = {}
        """How long each step took, for the summary (the restore time objective)."""

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        with step(name):
            yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started

    def storage(self) -> Storage:
        return self.destination.storage()

    def prepare(
        self,
        wal_fetch_command: str | None = None,
        fetch_wal: bool = True,
        before_filling: Callable[[Window], None] = lambda window: None,
    ) -> Prepared:
        check_empty_directory(self.directory)
        storage = self.storage()
        prefix = self.destination.prefix
        log.info("restoring from %s", self.destination.name)
        with step("choose"):
            bases = base_backups(storage, prefix)
            base = choose_base(bases, self.target)
            chain = chain_of(base, bases)
            window = recoverable_window(base, wal_archive(storage, prefix), self.target.timeline)
        log.info(
            "base backup %s (WAL %s to %s, timeline %d); recoverable to %s on timeline %d",
            base.label,
            base.start_lsn,
            base.stop_lsn,
            base.timeline,
            window.end.isoformat(),
            window.timeline,
        )
        for fork in window.forks:
            log.warning("the archive forks: %s; it is not followed (--timeline N follows it)", fork)
        check_reachable(self.target, base, window)
        before_filling(window)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        try:
            segments = self._fill(chain, window, wal_fetch_command, fetch_wal)
        except BaseException:
            empty_directory(self.directory)
            raise
        return Prepared(self.directory, base, window, segments)

    def _fill(
        self,
        chain: list[BaseBackupRecord],
        window: Window,
        wal_fetch_command: str | None,
        fetch_wal: bool,
    ) -> int:
        base = chain[-1]
        spool = self.config.backup.spool_dir
        with Decryption.open(self.config.encryption, spool) as decryption:
            if len(chain) == 1:
                self._extract(base, self.directory, decryption)
            else:
                self._combine(chain, decryption)
            self._verify(base)
            make_safe(self.directory, ARCHIVING if self.keep_archiving else frozenset())
            segments = 0
            if wal_fetch_command is None and fetch_wal:
                segments = self._fetch_wal(base, window, decryption)
        self._write_settings(window, wal_fetch_command)
        return segments

    def _combine(self, chain: list[BaseBackupRecord], decryption: Decryption) -> None:
        """Each backup of an incremental chain extracted apart, then pg_combinebackup."""
        tool = exact_client(
            "pg_combinebackup", chain[-1].server_major, self.config.postgres.pg_dump_path
        )
        log.info(
            "incremental base backup: combining %s",
            " + ".join(record.label for record in chain),
        )
        with combine_area(self.config.backup.spool_dir) as area:
            directories = []
            for position, record in enumerate(chain):
                directory = area / str(position)
                directory.mkdir(mode=0o700)
                self._extract(record, directory, decryption)
                directories.append(str(directory))
            with self.timed("combine"):
                argv = [str(tool.path), *directories, "--output", str(self.directory)]
                runner.run([Stage("pg_combinebackup", argv)])

    def _extract(self, base: BaseBackupRecord, directory: Path, decryption: Decryption) -> None:
        """Streamed from S3 into tar, checked as it passes; from a spool file when the
        stream breaks."""
        suffix = base.key.rsplit("/", 1)[1].removeprefix("base.tar")
        must_be_encrypted = self.config.encryption.enabled
        try:
            with self.timed("download and extract"):
                unpack_streamed(
                    self.storage().stream(base.key, CHUNK_BYTES),
                    base.key,
                    base.sha256,
                    lambda head: decoding_stages_for(head, suffix, decryption, base.key),
                    extract_stage(directory),
                    directory,
                    must_be_encrypted,
                )
        except StreamBroken as error:
            log.warning("%s; downloading it whole instead", error)
            self._extract_spooled(base, suffix, directory, decryption)
        log.info("checksum ok (%s)", human_size(base.size))

    def _extract_spooled(
        self, base: BaseBackupRecord, suffix: str, directory: Path, decryption: Decryption
    ) -> None:
        expected = Expected(sha256=base.sha256, encrypted=self.config.encryption.enabled)
        spool = self.config.backup.spool_dir
        with (
            fetch_checked(
                self.storage(), base.key, spool, ".tar" + suffix, expected, timed=self.timed
            ) as stored,
            self.timed("extract"),
            decoding_stages(stored, suffix, decryption, base.key) as stages,
            stored.open("rb") as source,
        ):
            runner.run([*stages, extract_stage(directory)], source=source)

    def _verify(self, base: BaseBackupRecord) -> None:
        """pg_verifybackup checks every file against the backup manifest, and the WAL."""
        try:
            configured = self.config.postgres.pg_dump_path
            tool = exact_client("pg_verifybackup", base.server_major, configured)
        except MoonflowerError as error:
            log.warning("not verified with pg_verifybackup: %s", error)
            return
        with self.timed("verify"):
            runner.run([Stage("pg_verifybackup", [str(tool.path), str(self.directory)])])
        log.info("pg_verifybackup: the data directory matches its manifest")

    def _fetch_wal(self, base: BaseBackupRecord, window: Window, decryption: Decryption) -> int:
        """The history files of later timelines, then the chain of segments, into pg_wal;
        recovery follows them to the latest timeline as it would from an archive. Segments
        are fetched WAL_FETCH_JOBS at a time; the chain ends at the first one missing."""
        archive = WalArchive(self.config, self.destination, None, fallbacks=self.fallbacks)
        wal_dir = self.directory / "pg_wal"
        fetched = 0
        with self.timed("fetch WAL"):
            for name in window.histories:
                if archive.fetch(name, wal_dir / name, decryption):
                    fetched += 1

            def fetch(name: str) -> bool:
                since, system = base.stopped, base.system_identifier
                return archive.fetch(name, wal_dir / name, decryption, since, system)

            with ThreadPoolExecutor(WAL_FETCH_JOBS, thread_name_prefix="wal-fetch") as pool:
                futures = [
                    pool.submit(contextvars.copy_context().run, fetch, name)
                    for name in window.chain
                ]
                found = [future.result() for future in futures]
            if False in found:
                missing = found.index(False)
                log.warning(
                    "%s could not be fetched: recovery ends before it", window.chain[missing]
                )
                for name in window.chain[missing:]:
                    (wal_dir / name).unlink(missing_ok=True)
                found = found[:missing]
            fetched += len(found)
        log.info("fetched %d WAL file(s) into %s", fetched, wal_dir)
        return fetched

    def _write_settings(self, window: Window, wal_fetch_command: str | None) -> None:
        lines = [SETTINGS_MARK, *self.target.settings(window), "recovery_target_action = 'promote'"]
        if wal_fetch_command is not None:
            quoted = wal_fetch_command.replace("'", "''")
            lines.append(f"restore_command = '{quoted} wal-fetch %f %p'")
        else:
            # Archive recovery needs a restore_command; the WAL is already in pg_wal, where
            # recovery looks for every file the command does not provide.
            lines.append("restore_command = 'false'")
        settings = "\n" + "\n".join(lines) + "\n"
        write_private(self.directory / "postgresql.auto.conf", settings, append=True)
        write_private(self.directory / "recovery.signal", "")
        for leftover in ("standby.signal", "postmaster.pid"):
            (self.directory / leftover).unlink(missing_ok=True)


def extract_stage(directory: Path) -> Stage:
    """The vetting extractor (proc/untar.py): only regular files and directories."""
    return Stage("tar -x", [sys.executable, "-I", untar.__file__, str(directory)])


def hand_over(directory: Path, account: Account | None) -> None:
    """Give the restored directory to the account the server will run as (none: this user)."""
    if account is None:
        return
    os.chown(directory, account.uid, account.gid)
    for root, directories, files in os.walk(directory):
        for name in directories + files:
            path = os.path.join(root, name)
            os.chown(path, account.uid, account.gid, follow_symlinks=False)


def start_command(directory: Path, major: int, configured: Path | None) -> str:
    """The stock command that starts the restored directory without colliding with a server
    already on this host: no TCP port at all, its socket in the data directory itself (or,
    where that path is too long for a socket, a port free right now on localhost only)."""
    try:
        pg_ctl = str(exact_client("pg_ctl", major, configured).path)
    except MoonflowerError:
        pg_ctl = shutil.which("pg_ctl") or "pg_ctl"
    if socket_fits(directory):
        where = shlex.quote(f"unix_socket_directories={directory}")
        options = f"-c listen_addresses= -c {where}"
    else:
        options = f"-c listen_addresses=localhost -c port={free_port()}"
    return shlex.join([pg_ctl, "-D", str(directory), "-o", options, "start"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
