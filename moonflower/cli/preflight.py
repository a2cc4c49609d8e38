"""`moonflower check`: a preflight of everything a backup needs, without making one."""

import contextlib
import functools
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from moonflower.catalog.keys import listing_prefix
from moonflower.config.model import Config
from moonflower.core.errors import ConfigError, MoonflowerError
from moonflower.core.state_dir import state_directory
from moonflower.pitr.archive_writer import writer_shown
from moonflower.postgres.clients import any_psql, find_client
from moonflower.postgres.connection import MAINTENANCE_DATABASE, libpq_environment, passfile
from moonflower.postgres.queries import psql_query, server_version
from moonflower.proc.gpg import Encryption
from moonflower.storage.destination import Destination
from moonflower.storage.gateway import Storage

PROBE_NAME = ".moonflower-check-"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_check(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except (MoonflowerError, OSError) as error:
        return Check(name, False, str(error))


SLOT_EXISTS = "SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = '{}'"
"""The slot name is checked ([a-z0-9_]) when the settings are read."""


class Preflight:
    def __init__(
        self, config: Config, destination: Destination, replicas: list[Destination]
    ) -> None:
        self.config = config
        self.destination = destination
        self.replicas = replicas

    def run(self) -> list[Check]:
        checks = [Check("configuration", True, "valid")]
        backup = self.config.backup
        checks.append(run_check("spool directory", lambda: writable(backup.spool_dir)))
        checks.append(run_check("state directory", lambda: writable(state_directory(backup))))
        checks += self._databases()
        storage: Storage | None = None
        try:
            storage = self.destination.storage()
        except MoonflowerError as error:
            checks.append(Check("S3 client", False, str(error)))
        if storage is not None:
            checks.append(run_check("bucket", lambda: self._bucket(storage)))
            checks.append(run_check("bucket writable", lambda: self._probe(storage)))
            checks.append(run_check("WAL archive writer", lambda: writer_shown(self.config)))
        for replica in self.replicas:
            checks += self._destination(replica)
        if self.config.wal.stream:
            checks.append(run_check("WAL streaming", self._replication))
        if self.config.wal.incremental:
            checks.append(run_check("incremental base backups", self._incremental))
        checks.append(run_check("encryption", self._encryption))
        checks += [
            run_check(f"webhook {event}", functools.partial(resolve, url))
            for event, url in self._webhooks()
        ]
        return checks

    def _databases(self) -> list[Check]:
        pg = self.config.postgres
        results = []
        with contextlib.ExitStack() as stack:
            try:
                password = stack.enter_context(passfile(pg.password, self.config.backup.spool_dir))
            except MoonflowerError as error:
                return [Check("databases", False, str(error))]
            for database in pg.databases:

                def probe(database: str = database) -> str:
                    environment = libpq_environment(pg, password, database)
                    server = server_version(any_psql(pg.pg_dump_path), environment)
                    tool = find_client("pg_dump", server, pg.pg_dump_path)
                    return f"server {server.text}; pg_dump {tool.version} at {tool.path}"

                results.append(run_check(f"database {database}", probe))
        return results

    def _replication(self) -> str:
        """The user may stream WAL (checked before the checks run), and the slot's state."""
        pg = self.config.postgres
        slot = self.config.wal.slot
        with passfile(pg.password, self.config.backup.spool_dir) as password:
            environment = libpq_environment(pg, password, MAINTENANCE_DATABASE)
            found = psql_query(any_psql(pg.pg_dump_path), environment, SLOT_EXISTS.format(slot))
        state = "exists" if found == "1" else "will be created by the first run"
        return f"{pg.user} may replicate; replication slot {slot} {state}"

    def _incremental(self) -> str:
        """BASEBACKUP_INCREMENTAL needs PostgreSQL 17+ with summarize_wal on."""
        from moonflower.pitr.incremental import FIRST_INCREMENTAL_MAJOR, SUMMARIZE_WAL_QUERY

        pg = self.config.postgres
        with passfile(pg.password, self.config.backup.spool_dir) as password:
            environment = libpq_environment(pg, password, MAINTENANCE_DATABASE)
            psql = any_psql(pg.pg_dump_path)
            server = server_version(psql, environment)
            if server.major < FIRST_INCREMENTAL_MAJOR:
                raise MoonflowerError(
                    f"server {server.text}: incremental base backups need PostgreSQL 17 or "
                    "later; base backups will be full"
                )
            if psql_query(psql, environment, SUMMARIZE_WAL_QUERY) != "on":
                raise MoonflowerError(
                    "summarize_wal is off: base backups will be full "
                    "(ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf())"
                )
        return f"server {server.text} summarizes WAL; chains of up to {self.config.wal.full_every}"

    def _destination(self, destination: Destination) -> list[Check]:
        """A replica checked as the primary is: reachable, and writable."""
        named = f"replica {destination.name}"
        try:
            storage = destination.storage()
        except MoonflowerError as error:
            return [Check(f"{named}: S3 client", False, str(error))]
        return [
            run_check(f"{named}: bucket", lambda: self._bucket(storage)),
            run_check(f"{named}: bucket writable", lambda: self._probe(storage)),
        ]

    def _bucket(self, storage: Storage) -> str:
        storage.check_bucket()
        lock = " with Object Lock" if storage.config.governance is not None else ""
        return f"s3://{storage.config.bucket} reachable{lock}"

    def _probe(self, storage: Storage) -> str:
        key = f"{listing_prefix(storage.config.prefix)}{PROBE_NAME}{secrets.token_hex(6)}"
        storage.put_probe(key, b"moonflower check\n")
        storage.delete_everywhere([key])
        return f"wrote and deleted {key}"

    def _encryption(self) -> str:
        try:
            with Encryption.open(
                self.config.encryption, self.config.backup.spool_dir
            ) as encryption:
                if encryption is None:
                    return "off (backups are not encrypted)"
                if encryption.recipient is not None:
                    return f"public key {encryption.recipient.fingerprint}"
                return "passphrase (symmetric AES256)"
        except ConfigError as error:
            raise MoonflowerError("; ".join(error.problems)) from None

    def _webhooks(self) -> list[tuple[str, str]]:
        hooks = self.config.webhooks
        pairs = [("start", hooks.start), ("success", hooks.success), ("failure", hooks.failure)]
        return [(event, url) for event, url in pairs if url]


def writable(directory: Path) -> str:
    """A file can be created (0600) in `directory`, written and removed."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".moonflower-check-") as probe:
            probe.write(b"moonflower check\n")
            probe.flush()
    except OSError as error:
        raise MoonflowerError(f"cannot write in {directory}: {error.strerror or error}") from None
    usage = shutil.disk_usage(directory)
    return f"{directory} writable, {usage.free // (1024 * 1024)} MiB free"


def resolve(url: str) -> str:
    """The webhook's host resolves (no request is sent)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise MoonflowerError(f"cannot resolve {host}: {error.strerror}") from None
    return f"{host} resolves to {addresses[0][4][0]}"
