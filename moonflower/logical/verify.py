"""Verifying backups: download, checksum, decrypt and decompress to the end, and optionally a
trial restore into a scratch database that is dropped afterwards."""

import contextlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from moonflower.catalog.logical import BackupInfo, Catalog
from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import database_context, log, step
from moonflower.logical.fetching import Reader, fetched_and_read
from moonflower.logical.readback import PlainSql
from moonflower.logical.restore import Restorer
from moonflower.postgres.connection import passfile
from moonflower.postgres.server import Server
from moonflower.proc.gpg import Decryption
from moonflower.storage.gateway import Storage

SCRATCH_PREFIX = "moonflower_verify_"


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
    def __init__(self, config: Config, storage: Storage, allow_unverified: bool = False) -> None:
        self.config = config
        self.storage = storage
        self.catalog = Catalog(storage, storage.config)
        self.restorer = Restorer(config, storage, allow_unverified)

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
            Decryption.open(self.config.encryption, spool_dir) as decryption,
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
            reader = Reader(
                self.storage,
                self.config.backup.spool_dir,
                self.restorer.trust,
                decryption,
                self.config.postgres.pg_dump_path,
            )
            with fetched_and_read(reader, info) as got:
                if server is not None:
                    self._trial_restore(self.restorer, got.path, decryption, info, server, got.sql)
                    result.restored = True
            log.info("verified %s", info.key)
        except MoonflowerError as error:
            result.error = str(error)
            log.error("%s failed verification: %s", info.key, error)
        result.seconds = time.monotonic() - started
        return result

    def _trial_restore(
        self,
        restorer: Restorer,
        path: Path,
        decryption: Decryption,
        info: BackupInfo,
        server: Server,
        sql: PlainSql | None,
    ) -> None:
        scratch = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
        with step("restore"):
            server.create(scratch)
            try:
                restorer.load_into(path, info, decryption, server, scratch, False, sql)
            finally:
                with contextlib.suppress(MoonflowerError):
                    server.drop(scratch)
