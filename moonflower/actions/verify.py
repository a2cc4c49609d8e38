"""Verifying backups: download, checksum, decrypt and decompress to the end, and optionally a
trial restore into a scratch database that is dropped afterwards."""

import contextlib
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from moonflower.actions.restore import (
    Restorer,
    decoding_stages,
    fetched,
    is_custom_format,
    plain_dump_file,
    run_with_progress,
)
from moonflower.config.model import Config
from moonflower.errors import MoonflowerError
from moonflower.output.logs import database_context, log, step
from moonflower.pipeline import runner
from moonflower.pipeline.gpg import Decryption
from moonflower.pipeline.runner import Stage
from moonflower.postgres.clients import newest_client
from moonflower.postgres.connection import passfile
from moonflower.postgres.queries import ServerVersion
from moonflower.postgres.server import Server
from moonflower.s3.catalog import BackupInfo, Catalog
from moonflower.s3.gateway import Storage

DUMP_COMPLETE = b"PostgreSQL database dump complete"
TAIL_BYTES = 65536
SCRATCH_PREFIX = "moonflower_verify_"
ANY_SERVER = ServerVersion(0, "any")


@dataclass
class Verified:
    info: BackupInfo
    error: str | None = None
    seconds: float = 0.0
    restored: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class Verifier:
    def __init__(self, config: Config, storage: Storage) -> None:
        self.config = config
        self.storage = storage
        self.catalog = Catalog(storage, config.s3)

    def select(self, databases: list[str] | None, every: bool) -> list[BackupInfo]:
        backups = self.catalog.backups(databases or None)
        if every:
            return backups
        newest: dict[str, BackupInfo] = {}
        for info in backups:
            newest.setdefault(info.backup.key_name, info)
        return list(newest.values())

    def verify(self, backups: list[BackupInfo], trial_restore: bool) -> list[Verified]:
        spool_dir = self.config.backup.spool_dir
        results = []
        with (
            passfile(self.config.postgres.password, spool_dir) as password,
            Decryption.open(self.config.encryption) as decryption,
        ):
            server = Server(self.config.postgres, password) if trial_restore else None
            for info in backups:
                with database_context(info.backup.database):
                    results.append(self._verify_one(info, decryption, server))
        return results

    def _verify_one(
        self, info: BackupInfo, decryption: Decryption, server: Server | None
    ) -> Verified:
        result = Verified(info)
        started = time.monotonic()
        try:
            with fetched(self.storage, info, self.config.backup.spool_dir) as path:
                self._read_to_the_end(path, decryption, info)
                if server is not None:
                    self._trial_restore(path, decryption, info, server)
                    result.restored = True
            log.info("verified %s", info.key)
        except MoonflowerError as error:
            result.error = str(error)
            log.error("%s failed verification: %s", info.key, error)
        result.seconds = time.monotonic() - started
        return result

    def _read_to_the_end(self, path: Path, decryption: Decryption, info: BackupInfo) -> None:
        if is_custom_format(path, info):
            self._list_custom(path, decryption, info)
            return
        with (
            step("read"),
            decoding_stages(path, decryption, info) as stages,
            tempfile.NamedTemporaryFile(dir=self.config.backup.spool_dir) as tail,
        ):
            tail_stage = Stage("tail", ["tail", "-c", str(TAIL_BYTES)])
            run_with_progress([*stages, tail_stage], path, "reading", tail.name)
            if DUMP_COMPLETE not in Path(tail.name).read_bytes():
                raise MoonflowerError(
                    'the SQL does not end with pg_dump\'s "dump complete" line: it is truncated'
                )

    def _list_custom(self, path: Path, decryption: Decryption, info: BackupInfo) -> None:
        """pg_restore --list reads the whole table of contents of a custom-format dump."""
        spool_dir = self.config.backup.spool_dir
        with step("read"), plain_dump_file(path, info, decryption, spool_dir) as dump:
            tool = newest_client("pg_restore", ANY_SERVER, self.config.postgres.pg_dump_path)
            listing = Stage("pg_restore", [str(tool.path), "--list", str(dump)])
            with tempfile.NamedTemporaryFile(dir=spool_dir) as output:
                runner.run([listing], output=output)
                if Path(output.name).stat().st_size == 0:
                    raise MoonflowerError("pg_restore --list found nothing in the dump")

    def _trial_restore(
        self, path: Path, decryption: Decryption, info: BackupInfo, server: Server
    ) -> None:
        scratch = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
        with step("restore"):
            server.create(scratch)
            try:
                Restorer(self.config, self.storage).load_into(
                    path, info, decryption, server, scratch, no_owner=False
                )
            finally:
                with contextlib.suppress(MoonflowerError):
                    server.drop(scratch)
