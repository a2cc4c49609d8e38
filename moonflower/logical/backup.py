"""One backup run: every configured database (BACKUP_JOBS at a time), each dumped through
its pipeline, checked, uploaded; then expired backups are pruned. S3 is opened beside the
first dump (`s3.opening`), so pg_dump starts without waiting for boto3 or the network."""

import contextvars
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pendulum

if TYPE_CHECKING:
    from collections.abc import Callable

    from moonflower.logical.size_check import EarlierBackups
    from moonflower.storage.gateway import Storage

from moonflower.catalog.keys import GLOBALS_SHOWN, backup_key
from moonflower.config.model import ChecksumMode, Config, DumpFormat, SizeDrop
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import database_context, log, step
from moonflower.core.sizes import human_size
from moonflower.core.state_dir import state_directory
from moonflower.logical.dump import DumpJob
from moonflower.logical.plans import (
    CONTENT_TYPES,
    connect_database_for,
    plan,
    program_for,
)
from moonflower.postgres.clients import any_psql, find_client, warm_up
from moonflower.postgres.connection import libpq_environment, passfile
from moonflower.postgres.queries import (
    ClusterFacts,
    ServerVersion,
    cluster_facts,
    excluded,
    list_databases,
    server_version_and_size,
)
from moonflower.proc.codec import ENCRYPTED_SUFFIX, describe
from moonflower.proc.gpg import Encryption, home_parent, remove_stale_homes
from moonflower.proc.openpgp import check_encrypted_artifact
from moonflower.proc.runner import abandon_all
from moonflower.proc.spool import remove_stale_files, spool_file
from moonflower.storage.destination import Destination
from moonflower.storage.journal import UploadJournal
from moonflower.storage.objects import Uploaded
from moonflower.storage.opening import OpeningStorage
from moonflower.storage.replica_uploads import replica_uploads
from moonflower.storage.transaction import upload_transaction

SIGNAL_LATENCY_SECONDS = 0.2


@dataclass
class DatabaseResult:
    database: str
    key: str | None = None
    size: int = 0
    seconds: float = 0.0
    error: str | None = None
    size_drop: str | None = None
    """Why its size is suspicious (BACKUP_SIZE_DROP); a failure too with `fail`."""
    copies: dict[str, str] = field(default_factory=dict)
    """Replica name -> the key the backup is stored under there."""
    warnings: list[str] = field(default_factory=list)
    """What went wrong without failing it (an optional replica that did not take it)."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RunReport:
    results: list[DatabaseResult] = field(default_factory=list)
    error: str | None = None
    """Set when the run could not start at all (for example, the bucket is unusable)."""
    prune_error: str | None = None
    pruned: int = 0
    """Backups the prune after the run deleted."""
    cluster: str | None = None
    """The cluster backed up ([cluster.<name>]), named in the summary."""

    @property
    def ok(self) -> bool:
        return self.error is None and all(result.ok for result in self.results)

    @property
    def failures(self) -> list[DatabaseResult]:
        return [result for result in self.results if not result.ok]


class BackupRun:
    def __init__(
        self,
        config: Config,
        destination: Destination,
        encryption: Encryption | None = None,
        prune_expired: "Callable[[Destination, list[str], RunReport], None] | None" = None,
    ) -> None:
        self.config = config
        self.destination = destination
        self.replicas: list[Destination] = []
        """Where each backup is stored too, after the primary (set by the job)."""
        self.prune_expired = prune_expired
        """Expires older backups of the databases just backed up (the retention's, passed in)."""
        self.encryption = encryption
        self.journal = UploadJournal(
            state_directory(config.backup), config.s3.bucket, config.s3.endpoint
        )
        self.s3: OpeningStorage | None = None
        self.earlier: EarlierBackups | None = None
        """What the size check compares with (BACKUP_SIZE_DROP), listed once S3 is open."""
        if config.monitoring.size_drop != SizeDrop.OFF:
            from moonflower.logical import size_check

            self.earlier = size_check.EarlierBackups(config.s3.prefix)
        self.facts: ClusterFacts | None = None
        timeout = config.backup.timeout
        self.time_limit = None if timeout is None else timeout.seconds

    def run(self) -> RunReport:
        report = RunReport(cluster=self.config.cluster)
        pg = self.config.postgres
        wanted = "every database" if pg.all_databases else ", ".join(pg.databases)
        log.info("backup started: %s%s", wanted, " and the globals" if pg.globals else "")
        if self.config.backup.format == DumpFormat.PLAIN:
            log.info("compression: %s", describe(self.config.backup.compression))
        remove_stale_files(self.config.backup.spool_dir)
        spool_dir = self.config.backup.spool_dir
        remove_stale_homes(home_parent(spool_dir))
        if home_parent(spool_dir) != spool_dir:
            remove_stale_homes(spool_dir)
        self.s3 = self.destination.opening(self._on_open)
        warm_up("pg_dump", self.config.postgres.pg_dump_path)
        with passfile(self.config.postgres.password, self.config.backup.spool_dir) as password:
            try:
                with step("discover"):
                    items = self._items(password)
            except MoonflowerError as error:
                report.error = str(self.s3.error() or error)  # S3's problem, as if asked first
                return report
            self.facts = self._cluster_facts(items, password)
            report.results = self.back_up_all(items, password)
        s3_error = self.s3.error()
        if s3_error is not None:  # the dumps were stopped; none of them is the news
            return RunReport(error=str(s3_error))
        if self.earlier is not None:
            from moonflower.logical.size_check import flag_size_drops

            with step("size check"):
                flag_size_drops(report.results, self.earlier, self.storage, self.config)
        succeeded = [result.database for result in report.results if result.ok]
        unflagged = [r.database for r in report.results if r.ok and r.size_drop is None]
        if unflagged and self.prune_expired is not None:
            for destination in (self.destination, *self.replicas):
                if destination.config.prunes:  # each by its own rules
                    with step("prune"):
                        self.prune_expired(destination, unflagged, report)
        if len(unflagged) < len(succeeded) and self.config.s3.prunes:
            log.warning("not pruning the databases whose size dropped: older backups stay")
        return report

    def _items(self, password_file: Path) -> tuple[str, ...]:
        """What this run backs up: the globals first when asked, then the databases."""
        pg = self.config.postgres
        names = list(pg.databases)
        if pg.all_databases:
            found = list_databases(pg, password_file, any_psql(pg.pg_dump_path))
            names = [name for name in found if not excluded(name, pg.exclude)]
            left_out = sorted(set(found) - set(names))
            log.info(
                "found %d database(s): %s%s",
                len(names),
                ", ".join(names) or "none",
                f" (excluded: {', '.join(left_out)})" if left_out else "",
            )
        return tuple(([GLOBALS_SHOWN] if pg.globals else []) + names)

    def _cluster_facts(self, items: tuple[str, ...], password_file: Path) -> ClusterFacts | None:
        """Server version and database sizes in one query for the whole run, instead of one
        per database; None (ask per database) when the query is refused."""
        if not items:
            return None
        pg = self.config.postgres
        environment = libpq_environment(pg, password_file, connect_database_for(items[0]))
        try:
            return cluster_facts(any_psql(pg.pg_dump_path), environment)
        except MoonflowerError as error:
            log.debug("asking each database for its size instead: %s", error)
            return None

    def _server_and_size(
        self, database: str, psql: Path, environment: dict[str, str]
    ) -> tuple[ServerVersion, int]:
        if self.facts is not None:
            if database == GLOBALS_SHOWN:
                return self.facts.server, 0
            if database in self.facts.sizes:
                return self.facts.server, self.facts.sizes[database]
        return server_version_and_size(psql, environment)

    def storage(self) -> "Storage":
        """S3, once open (waiting for it); raises what made it unusable."""
        assert self.s3 is not None
        return self.s3.get()

    def _on_open(self, storage: "Storage") -> None:
        if self.earlier is not None:
            self.earlier.start(storage)
        self._abort_stale_uploads(storage)

    def _abort_stale_uploads(self, storage: "Storage") -> None:
        for key in self.journal.stale_keys():
            aborted = storage.abort_uploads_for(key)
            self.journal.finished(key)
            if aborted:
                log.warning(
                    "aborted %d unfinished upload(s) of %s left by a killed run", aborted, key
                )

    def back_up_all(self, databases: tuple[str, ...], password: Path) -> list[DatabaseResult]:
        """One after another, or BACKUP_JOBS at a time; results in the configured order."""
        jobs = min(self.config.backup.jobs, len(databases))
        if jobs <= 1:
            return [self.back_up_one(database, password) for database in databases]
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="backup") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self.back_up_one, name, password)
                for name in databases
            ]
            try:
                pending = set(futures)
                while pending:
                    # Short waits: a signal may land in a worker thread, and Python runs its
                    # handler only when the main thread gets back to running bytecode.
                    _, pending = wait(pending, timeout=SIGNAL_LATENCY_SECONDS)
                return [future.result() for future in futures]
            except BaseException:
                # A signal in the main thread: stop the other threads' work, then let them end.
                abandon_all()
                for future in futures:
                    future.cancel()
                raise

    def back_up_one(self, database: str, password_file: Path) -> DatabaseResult:
        """One database (or the globals), its failure recorded in the result, not raised."""
        result = DatabaseResult(database)
        started = time.monotonic()
        with database_context(database):
            try:
                self._dump_and_upload(database, password_file, result)
            except MoonflowerError as error:
                result.error = str(error)
                if error is self._s3_failure():
                    log.debug("stopped: S3 cannot be used (%s)", error)  # the run reports it
                else:
                    log.error("backup failed: %s", error)
        result.seconds = time.monotonic() - started
        return result

    def _dump_and_upload(self, database: str, password_file: Path, result: DatabaseResult) -> None:
        pg = self.config.postgres
        environment = libpq_environment(pg, password_file, connect_database_for(database))
        with step("connect"):
            psql = any_psql(pg.pg_dump_path)
            server, size_hint = self._server_and_size(database, psql, environment)
            tool = find_client(program_for(database), server, pg.pg_dump_path)
            log.info("server %s, %s %s (%s)", server.text, tool.path.name, tool.version, tool.path)
        dump = plan(database, tool, self.config)
        extension = dump.extension + (ENCRYPTED_SUFFIX if self.encryption else "")
        content_type = CONTENT_TYPES["gpg"] if self.encryption else dump.content_type
        moment = pendulum.now("UTC")
        key = backup_key(self.config.s3.prefix, dump.key_name, moment, extension)
        with (
            spool_file(self.config.backup.spool_dir, extension) as spool,
            upload_transaction(
                self.journal,
                self.storage,
                key,
                spool,
                content_type,
                size_hint,
                self.config.s3.checksum == ChecksumMode.WHEN_SUPPORTED,
                unusable=self._s3_failure,
            ) as upload,
            replica_uploads(
                self.replicas,
                lambda replica: backup_key(replica.prefix, dump.key_name, moment, extension),
                spool,
                content_type,
                size_hint,
                state_directory(self.config.backup),
            ) as copies,
        ):
            with step("dump"), upload.producing(), copies.producing():
                sql_bytes = DumpJob(
                    dump,
                    tool,
                    environment,
                    spool,
                    self.encryption,
                    self.time_limit,
                    cancel=self._s3_failure,
                ).run_with_fallback()
                if self.encryption:
                    check_encrypted_artifact(spool)
                else:
                    dump.check(spool)
                sql_size = "?" if sql_bytes is None else human_size(sql_bytes)
                log.info(
                    "dump complete: %s of SQL, %s in the spool file",
                    sql_size,
                    human_size(spool.stat().st_size),
                )
            with step("upload"):
                uploaded = upload.upload()
                log.info("uploaded s3://%s/%s", self.config.s3.bucket, uploaded.key)
                log_retention(uploaded)
            if self.replicas:
                with step("replicas"):
                    replicated = copies.upload(f"the backup of {dump.key_name}")
                result.copies.update(copies.keys)
                result.warnings += replicated.warnings
                if replicated.failures:
                    result.error = "; ".join(replicated.failures)
        result.key = uploaded.key
        result.size = uploaded.size

    def _s3_failure(self) -> MoonflowerError | None:
        """Why S3 is unusable, if already known (never waits)."""
        return self.s3.failure() if self.s3 is not None else None


def log_retention(uploaded: Uploaded) -> None:
    if uploaded.locked_until is not None:
        log.info("locked in GOVERNANCE mode until %s", uploaded.locked_until.isoformat())
    if uploaded.expires is not None:
        log.info("expires %s; the first prune after that deletes it", uploaded.expires)
