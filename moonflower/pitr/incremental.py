"""Incremental base backups (PostgreSQL 17+ with `summarize_wal = on`): `pg_basebackup
--incremental` against the manifest of the previous base backup stores only the blocks that
changed since; `pg_combinebackup` rebuilds a full data directory from the chain at restore.

The manifest of each base backup is taken from the tar as it passes (a `tee` into a FIFO
that `tar` reads), before compression and encryption, so that even a public-key setup,
which cannot decrypt its own backups, can chain them. It is kept in the state directory
and uploaded beside the tar (compressed and encrypted like it) for hosts without that copy.
"""

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.physical import base_backups
from moonflower.config.model import Config
from moonflower.core.errors import MoonflowerError
from moonflower.core.logs import log
from moonflower.core.state_dir import state_directory
from moonflower.postgres.queries import ServerVersion
from moonflower.proc import runner
from moonflower.proc.codec import decoding_stages, encode_file
from moonflower.proc.gpg import Decryption, Encryption
from moonflower.proc.runner import Stage
from moonflower.proc.spool import spool_file
from moonflower.storage.checksums import file_sha256
from moonflower.storage.fetch import Expected, fetch_checked
from moonflower.storage.gateway import Storage
from moonflower.storage.objects import SHA256_METADATA_KEY

MANIFEST = "backup_manifest"
MANIFEST_TYPE = "application/octet-stream"
FIRST_INCREMENTAL_MAJOR = 17
SUMMARIZE_WAL_QUERY = "SELECT current_setting('summarize_wal')"
RELEASE_SECONDS = 10.0


def local_manifest(config: Config, label: str) -> Path:
    return state_directory(config.backup) / f"base-{label}.{MANIFEST}"


def chain_parent(
    config: Config, storage: Storage, server: ServerVersion, summarizing: bool
) -> BaseBackupRecord | None:
    """The base backup the next one can be incremental against, or None for a full one
    (with the reason logged)."""
    if not config.wal.incremental:
        return None
    if server.major < FIRST_INCREMENTAL_MAJOR:
        log.info("a full base backup: incremental ones need PostgreSQL 17 or later")
        return None
    if not summarizing:
        log.warning(
            "a full base backup: BASEBACKUP_INCREMENTAL needs summarize_wal = on on the server"
        )
        return None
    bases = base_backups(storage, config.s3.prefix)
    if not bases:
        return None
    newest = bases[-1]
    if newest.chain_length >= config.wal.full_every:
        log.info(
            "a full base backup: the chain has %d (BASEBACKUP_FULL_EVERY)", newest.chain_length
        )
        return None
    if newest.server_major != server.major or newest.manifest_key is None:
        log.info("a full base backup: %s cannot be built on", newest.label)
        return None
    return newest


@contextlib.contextmanager
def parent_manifest(
    config: Config, storage: Storage, parent: BaseBackupRecord
) -> Iterator[Path | None]:
    """The parent's manifest: the local copy, else the uploaded one when it can be
    decrypted here; None when neither is at hand (then a full backup is taken)."""
    local = local_manifest(config, parent.label)
    if local.is_file():
        yield local
        return
    with spool_file(config.backup.spool_dir, ".manifest") as plain:
        try:
            download_manifest(config, storage, parent, plain)
        except MoonflowerError as error:
            log.warning(
                "a full base backup: the manifest of %s is not at hand (%s)", parent.label, error
            )
            yield None
            return
        yield plain


def recorded_sha256(storage: Storage, key: str) -> str | None:
    """What an object recorded of itself (base backups described before their manifest's
    checksum went into backup.json)."""
    head = storage.head(key) or {}
    found = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
    return found if isinstance(found, str) else None


def download_manifest(
    config: Config, storage: Storage, parent: BaseBackupRecord, target: Path
) -> None:
    assert parent.manifest_key is not None
    suffix = parent.manifest_key.rsplit("/", 1)[1].removeprefix(MANIFEST)
    expected = Expected(
        sha256=parent.manifest_sha256 or recorded_sha256(storage, parent.manifest_key)
    )
    spool = config.backup.spool_dir
    with (
        Decryption.open(config.encryption, spool) as decryption,
        fetch_checked(
            storage, parent.manifest_key, spool, suffix or ".manifest", expected
        ) as stored,
        decoding_stages(stored, suffix, decryption, parent.manifest_key) as stages,
        stored.open("rb") as source,
        target.open("wb") as output,
    ):
        runner.run(stages, output=output, source=source)


@contextlib.contextmanager
def manifest_tap(directory: Path, target: Path) -> Iterator[list[Stage]]:
    """A `tee` stage for the raw tar, and a `tar` beside the pipeline reading the copy and
    writing its backup_manifest member to `target`."""
    fifo = directory / f".moonflower-manifest-{os.getpid()}-{threading.get_ident()}"
    os.mkfifo(fifo, 0o600)
    failure: list[BaseException] = []

    def read_manifest() -> None:
        try:
            with target.open("wb") as output:
                runner.run([Stage("tar", ["tar", "-x", "-O", "-f", str(fifo), MANIFEST])], output)
        except BaseException as error:  # reported by the caller
            failure.append(error)

    reader = threading.Thread(target=read_manifest, name="manifest-tap", daemon=True)
    reader.start()
    try:
        yield [Stage("tee", ["tee", "--output-error=warn-nopipe", str(fifo)])]
    finally:
        release(fifo, reader)
        fifo.unlink(missing_ok=True)
    if failure or not target.is_file() or target.stat().st_size == 0:
        raise MoonflowerError(f"the backup manifest could not be read from the tar ({failure})")


def release(fifo: Path, reader: threading.Thread) -> None:
    """When the pipeline never wrote into the FIFO (it failed first), tar still waits for a
    writer: open and close one so that it sees the end."""
    deadline = time.monotonic() + RELEASE_SECONDS
    while reader.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # ENXIO: tar has not opened it yet
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=0.1)
    reader.join(timeout=RELEASE_SECONDS)


def keep_manifest(
    config: Config,
    storage: Storage,
    encryption: Encryption | None,
    label: str,
    raw: Path,
    key: str,
    encoded: Path,
) -> str:
    """Keep the manifest locally and upload it, encoded into `encoded`, beside the base
    backup; returns the SHA-256 of what was uploaded."""
    local = local_manifest(config, label)
    for stale in local.parent.glob(f"base-*.{MANIFEST}"):
        stale.unlink(missing_ok=True)  # only the newest is ever built on
    raw.replace(local)
    os.chmod(local, 0o600)
    encode_file(local, encoded, config.backup.compression, encryption)
    storage.upload(encoded, key, MANIFEST_TYPE)
    return file_sha256(encoded)
