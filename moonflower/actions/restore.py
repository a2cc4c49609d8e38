"""Bringing a backup back: download, check, then decrypt | decompress | psql as one pipeline."""

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from moonflower.config.model import Config
from moonflower.errors import MoonflowerError, RestoreError
from moonflower.output.logs import log, step
from moonflower.output.progress import StepProgress, stdin_position
from moonflower.pipeline import runner
from moonflower.pipeline.compression import decompress_stage, sniff
from moonflower.pipeline.gpg import Decryption
from moonflower.pipeline.openpgp import (
    PUBLIC_KEY_SESSION_KEY_TAG,
    SYMMETRIC_SESSION_KEY_TAG,
    packet_tag,
)
from moonflower.pipeline.runner import Pipeline, Stage
from moonflower.pipeline.spool import spool_file
from moonflower.postgres.clients import ClientTool, newest_client
from moonflower.postgres.connection import MAINTENANCE_DATABASE, passfile
from moonflower.postgres.plans import CUSTOM_EXTENSION, CUSTOM_MAGIC
from moonflower.postgres.server import Server
from moonflower.s3.catalog import BackupInfo, Catalog
from moonflower.s3.checksums import file_composite_sha256, file_sha256, same_composite
from moonflower.s3.gateway import Storage
from moonflower.s3.keys import GLOBALS_NAME

PLAIN_SQL_STARTS = (b"--", b"SET ", b"\n", b"\\")
RESTORE_JOBS = max(1, min(4, os.cpu_count() or 1))
MISSING_ROLE = re.compile(r'role "([^"]+)" does not exist')


@dataclass(frozen=True)
class Format:
    encrypted: bool
    symmetric: bool = False
    compression: str | None = None
    """"gzip", "zstd" or "none" when known; None inside an OpenPGP message."""


def detect_format(path: Path) -> Format:
    """From the content, not the name: gzip, plain SQL, or OpenPGP (the original image's .sql.gpg
    holds SQL compressed by gpg itself; ours holds gzip)."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if not head:
        raise RestoreError("inspect", "the backup is empty")
    compression = sniff(head)
    if compression is not None:
        return Format(encrypted=False, compression=compression)
    if head.startswith(PLAIN_SQL_STARTS) or head.startswith(CUSTOM_MAGIC):
        return Format(encrypted=False, compression="none")
    tag = packet_tag(head[0])
    if tag == SYMMETRIC_SESSION_KEY_TAG:
        return Format(encrypted=True, symmetric=True)
    if tag == PUBLIC_KEY_SESSION_KEY_TAG:
        return Format(encrypted=True, symmetric=False)
    raise RestoreError("inspect", "not a gzip stream, plain SQL or an OpenPGP message")


def check_download(info: BackupInfo, path: Path) -> None:
    """Refuse a download that differs from what was uploaded."""
    mismatch = RestoreError(
        "checksum",
        f"{info.key} does not match the SHA-256 recorded at upload; it is damaged or was changed",
    )
    if info.sha256 is not None:
        if file_sha256(path) != info.sha256:
            raise mismatch
        log.info("checksum ok (SHA-256 %s…)", info.sha256[:16])
    elif info.part_size and info.s3_checksum:
        if not same_composite(info.s3_checksum, file_composite_sha256(path, info.part_size)):
            raise mismatch
        log.info("checksum ok (composite SHA-256 of %d-byte parts)", info.part_size)
    else:
        log.warning("%s has no recorded SHA-256 (made by the original image?)", info.key)


@contextlib.contextmanager
def fetched(storage: Storage, info: BackupInfo, spool_dir: Path) -> Iterator[Path]:
    """The backup downloaded to a spool file and checked against its recorded checksum."""
    with spool_file(spool_dir, info.backup.extension) as path:
        with step("download"), StepProgress("downloading", info.size) as progress:
            try:
                storage.download(info.key, path, progress.advance)
            except MoonflowerError as error:
                raise RestoreError("download", str(error)) from None
        with step("checksum"):
            check_download(info, path)
        yield path


@contextlib.contextmanager
def decoding_stages(path: Path, decryption: Decryption, info: BackupInfo) -> Iterator[list[Stage]]:
    """Stages turning the file into SQL: [gpg --decrypt] | [gzip -dc or zstd -dc]."""
    found = detect_format(path)
    with contextlib.ExitStack() as stack:
        stages = []
        if found.encrypted:
            stages.append(stack.enter_context(decryption.stage(found.symmetric, info.key)))
        decompress = decompress_stage(found.compression, info.backup.extension)
        if decompress is not None:
            stages.append(decompress)
        if not stages:
            stages.append(Stage("cat", ["cat"]))
        yield stages


def run_with_progress(stages: list[Stage], source: Path, step: str, output_path: str) -> None:
    total = source.stat().st_size
    with (
        source.open("rb") as reader,
        open(output_path, "wb") as output,
        StepProgress(step, total) as progress,
    ):

        def tick(pipeline: Pipeline) -> None:
            position = stdin_position(pipeline.first_pid)
            if position is not None:
                progress.update(position)

        runner.run(stages, output=output, source=reader, on_tick=tick)
        progress.update(total)


def psql_stage(tool: ClientTool, server: Server, database: str) -> Stage:
    argv = [str(tool.path), "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1"]
    return Stage("psql", argv, env=server.environment(database))


def is_custom_format(path: Path, info: BackupInfo) -> bool:
    with path.open("rb") as handle:
        if handle.read(len(CUSTOM_MAGIC)) == CUSTOM_MAGIC:
            return True
    return info.backup.extension.startswith(CUSTOM_EXTENSION)


@contextlib.contextmanager
def plain_dump_file(
    path: Path, info: BackupInfo, decryption: Decryption, spool_dir: Path
) -> Iterator[Path]:
    """The custom-format dump as a file pg_restore can seek in (decrypted to a second spool
    file first when needed; gpg writes it, the bytes do not pass through Python)."""
    found = detect_format(path)
    if not found.encrypted:
        yield path
        return
    with (
        spool_file(spool_dir, CUSTOM_EXTENSION) as plain,
        decryption.stage(found.symmetric, info.key) as gpg,
        path.open("rb") as source,
        plain.open("wb") as output,
    ):
        runner.run([gpg], output=output, source=source)
        yield plain


def conninfo_dbname(name: str) -> str:
    """A libpq connection string naming just the database, whatever characters it holds."""
    return "dbname='" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def owner_hint(message: str) -> str:
    match = MISSING_ROLE.search(message)
    if not match:
        return ""
    return (
        f" (create role {match.group(1)} first, or restore with --globals; custom-format "
        "backups can also be restored with --no-owner)"
    )


class Restorer:
    def __init__(self, config: Config, storage: Storage) -> None:
        self.config = config
        self.storage = storage
        self.catalog = Catalog(storage, config.s3)

    def choose(self, database: str, key: str | None) -> BackupInfo:
        try:
            info = self.catalog.get(key) if key else self.catalog.newest(database)
        except MoonflowerError as error:
            raise RestoreError("find", str(error)) from None
        log.info(
            "restoring %s (%s, created %s)",
            info.key,
            info.backup.database,
            info.backup.created.isoformat(),
        )
        return info

    def restore(
        self,
        database: str,
        target: str,
        key: str | None,
        drop_existing: bool,
        with_globals: bool = False,
        no_owner: bool = False,
    ) -> None:
        info = self.choose(database, key)
        spool_dir = self.config.backup.spool_dir
        with (
            passfile(self.config.postgres.password, spool_dir) as password,
            Decryption.open(self.config.encryption) as decryption,
        ):
            server = Server(self.config.postgres, password)
            if with_globals:
                self._restore_globals(server, decryption)
            with fetched(self.storage, info, spool_dir) as path:
                with step("target"):
                    self._prepare_target(server, target, drop_existing)
                with step("load"):
                    try:
                        self.load_into(path, info, decryption, server, target, no_owner)
                    except MoonflowerError as error:
                        raise RestoreError(
                            "load",
                            f"{error}{owner_hint(str(error))}; the database {target} was left "
                            "as it is for inspection",
                        ) from None
        log.info("restored %s into database %s", info.key, target)

    def load_into(
        self,
        path: Path,
        info: BackupInfo,
        decryption: Decryption,
        server: Server,
        target: str,
        no_owner: bool,
    ) -> None:
        if is_custom_format(path, info):
            with plain_dump_file(path, info, decryption, self.config.backup.spool_dir) as dump:
                tool = newest_client(
                    "pg_restore", server.version(), self.config.postgres.pg_dump_path
                )
                argv = [
                    str(tool.path),
                    "--no-password",
                    "--exit-on-error",
                    f"--jobs={RESTORE_JOBS}",
                    f"--dbname={conninfo_dbname(target)}",
                ]
                if no_owner:
                    argv.append("--no-owner")
                stage_ = Stage("pg_restore", [*argv, str(dump)], env=server.environment(target))
                with open(os.devnull, "wb") as output:
                    runner.run([stage_], output=output)
            return
        psql = newest_client("psql", server.version(), self.config.postgres.pg_dump_path)
        with decoding_stages(path, decryption, info) as stages:
            run_with_progress(
                [*stages, psql_stage(psql, server, target)], path, "loading", os.devnull
            )

    def _restore_globals(self, server: Server, decryption: Decryption) -> None:
        """Roles and tablespaces first; errors for roles that already exist are expected."""
        with step("globals"):
            try:
                info = self.catalog.newest(GLOBALS_NAME, globals_=True)
            except MoonflowerError as error:
                raise RestoreError("globals", str(error)) from None
            log.info("restoring the globals from %s", info.key)
            psql = newest_client("psql", server.version(), self.config.postgres.pg_dump_path)
            argv = [str(psql.path), "-X", "-q", "-w"]
            stage_ = Stage("psql", argv, env=server.environment(MAINTENANCE_DATABASE))
            with (
                fetched(self.storage, info, self.config.backup.spool_dir) as path,
                decoding_stages(path, decryption, info) as stages,
            ):
                run_with_progress([*stages, stage_], path, "globals", os.devnull)
            log.info("globals restored (existing roles were kept; errors about them are normal)")

    def _prepare_target(self, server: Server, target: str, drop_existing: bool) -> None:
        try:
            if server.exists(target):
                tables = server.table_count(target)
                if tables and not drop_existing:
                    raise RestoreError(
                        "target",
                        f"database {target} already holds {tables} table(s); restore into a "
                        "new database, or add --drop-existing to drop and recreate it",
                    )
                if tables:
                    log.warning("dropping and recreating database %s (--drop-existing)", target)
                    server.drop(target)
                    server.create(target)
            else:
                log.info("creating database %s", target)
                server.create(target)
        except RestoreError:
            raise
        except MoonflowerError as error:
            raise RestoreError("target", str(error)) from None
