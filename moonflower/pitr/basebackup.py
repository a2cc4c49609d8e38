"""A physical base backup: `pg_basebackup` writing one tar (data files, the WAL needed to
reach consistency, and the backup manifest) to stdout, compressed and encrypted on its way
into the spool, then uploaded with a small JSON description beside it.

The tar restores on its own: it carries the WAL from its start to its end point, so it is
usable even if the WAL archive is lost.
"""

import contextlib
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pendulum

from moonflower.catalog.base_record import BaseBackupRecord
from moonflower.catalog.keys import listing_prefix, timestamp
from moonflower.catalog.physical_keys import (
    BASE_DESCRIPTION,
    BASE_OBJECT,
    base_folder,
)
from moonflower.config.model import ChecksumMode, Config
from moonflower.core.errors import DumpError
from moonflower.core.logs import log, step
from moonflower.core.sizes import human_size
from moonflower.core.state_dir import state_directory
from moonflower.postgres.clients import any_psql, find_client
from moonflower.postgres.connection import MAINTENANCE_DATABASE, libpq_environment, passfile
from moonflower.postgres.queries import psql_query, server_version
from moonflower.postgres.replication import ensure_slot
from moonflower.proc import runner
from moonflower.proc.codec import encoding_stages, encoding_suffix
from moonflower.proc.gpg import Encryption
from moonflower.proc.runner import Stage
from moonflower.proc.spool import spool_file
from moonflower.storage.checksums import file_sha256
from moonflower.storage.destination import Destination
from moonflower.storage.gateway import Storage
from moonflower.storage.journal import UploadJournal
from moonflower.storage.replica_uploads import replica_uploads
from moonflower.storage.replication import Replicated, store_file, store_on_replicas
from moonflower.storage.transaction import upload_transaction

START_POINT = re.compile(r"write-ahead log start point: (\S+) on timeline (\d+)")
END_POINT = re.compile(r"write-ahead log end point: (\S+)")
SEGMENT_SIZE_QUERY = "SELECT pg_size_bytes(current_setting('wal_segment_size'))"
SYSTEM_IDENTIFIER_QUERY = "SELECT system_identifier FROM pg_catalog.pg_control_system()"
CLUSTER_SIZE_QUERY = "SELECT sum(pg_database_size(oid)) FROM pg_catalog.pg_database"
"""An upper bound of the tar's size, to size the parts of the upload that runs beside it."""
TAR_TYPE = "application/x-tar"
JSON_TYPE = "application/json"


def wal_points(stderr_lines: list[str]) -> tuple[str, int, str]:
    """Start LSN, timeline and end LSN from pg_basebackup's --verbose output."""
    text = "\n".join(stderr_lines)
    start, end = START_POINT.search(text), END_POINT.search(text)
    if start is None or end is None:
        raise DumpError("pg_basebackup did not report its WAL start and end points")
    return start.group(1), int(start.group(2)), end.group(1)


def take_base_backup(
    config: Config,
    destination: Destination,
    encryption: Encryption | None,
    full: bool = False,
    replicas: Sequence[Destination] = (),
) -> BaseBackupRecord:
    """A base backup; incremental against the previous one when BASEBACKUP_INCREMENTAL
    allows it and `full` is not asked for. Stored on the `replicas` too (ReplicaFailed when
    a required one did not take it, once the primary's copy is complete)."""
    pg = config.postgres
    with step("connect"):
        storage = destination.checked()
    with passfile(pg.password, config.backup.spool_dir) as password:
        environment = libpq_environment(pg, password, MAINTENANCE_DATABASE)
        if config.wal.stream:
            # The slot holds the WAL from here on until the stream has it: a base backup
            # taken before the stream first runs still starts an unbroken chain.
            ensure_slot(pg, config.wal.slot, environment)
        psql = any_psql(pg.pg_dump_path)
        server = server_version(psql, environment)
        segment_size = int(psql_query(psql, environment, SEGMENT_SIZE_QUERY))
        system_identifier = psql_query(psql, environment, SYSTEM_IDENTIFIER_QUERY) or None
        tool = find_client("pg_basebackup", server, pg.pg_dump_path)
        log.info("server %s, pg_basebackup %s (%s)", server.text, tool.version, tool.path)
        parent = None
        if config.wal.incremental and not full:
            from moonflower.pitr.incremental import SUMMARIZE_WAL_QUERY, chain_parent

            summarizing = psql_query(psql, environment, SUMMARIZE_WAL_QUERY) == "on"
            parent = chain_parent(config, storage, server, summarizing)
        cluster_size = int(psql_query(psql, environment, CLUSTER_SIZE_QUERY) or 0)
        with parent_manifest_of(config, storage, parent) as manifest:
            if manifest is None:
                parent = None
            taken = run_base_backup(
                config,
                storage,
                encryption,
                [str(tool.path), *incremental_flag(manifest)],
                environment,
                cluster_size,
                replicas,
            )
    record = BaseBackupRecord(
        label=taken.label,
        key=taken.key,
        start_lsn=taken.start_lsn,
        stop_lsn=taken.stop_lsn,
        timeline=taken.timeline,
        start_time=taken.started.isoformat(),
        stop_time=taken.stopped.isoformat(),
        server_version=server.text,
        server_major=server.major,
        segment_size=segment_size,
        size=taken.size,
        sha256=taken.sha256,
        compression=str(config.backup.compression.algorithm),
        encrypted=encryption is not None,
        parent=parent.label if parent else None,
        chain_length=parent.chain_length + 1 if parent else 1,
        manifest_key=taken.manifest_key,
        manifest_sha256=taken.manifest_sha256,
        system_identifier=system_identifier,
    )
    write_description(storage, config, record)
    described = describe_on_replicas(
        config, [r for r in replicas if r.name in taken.replicated.stored], record
    )
    log.info(
        "%s base backup %s stored: %s, WAL %s to %s on timeline %d",
        f"incremental (on {parent.label})" if parent else "full",
        record.label,
        human_size(record.size),
        record.start_lsn,
        record.stop_lsn,
        record.timeline,
    )
    taken.replicated.then(described).check()
    return record


def describe_on_replicas(
    config: Config, replicas: Sequence[Destination], record: BaseBackupRecord
) -> Replicated:
    """The description of a base backup each replica holds, naming the replica's keys."""
    primary = listing_prefix(config.s3.prefix)

    def there(key: str | None, replica: Destination) -> str | None:
        return None if key is None else listing_prefix(replica.prefix) + key[len(primary) :]

    def describe(replica: Destination) -> None:
        relocated = dataclasses.replace(
            record,
            key=there(record.key, replica) or record.key,
            manifest_key=there(record.manifest_key, replica),
        )
        write_description(replica.checked(), config, relocated)

    what = f"the description of base backup {record.label}"
    return store_on_replicas(replicas, what, describe, state_directory(config.backup))


def incremental_flag(manifest: Path | None) -> list[str]:
    return [] if manifest is None else [f"--incremental={manifest}"]


def parent_manifest_of(
    config: Config, storage: Storage, parent: BaseBackupRecord | None
) -> contextlib.AbstractContextManager[Path | None]:
    if parent is None:
        return contextlib.nullcontext()
    from moonflower.pitr.incremental import parent_manifest

    return parent_manifest(config, storage, parent)


@dataclass(frozen=True)
class Taken:
    label: str
    key: str
    started: pendulum.DateTime
    stopped: pendulum.DateTime
    start_lsn: str
    timeline: int
    stop_lsn: str
    size: int
    sha256: str
    manifest_key: str | None
    manifest_sha256: str | None
    replicated: Replicated


def run_base_backup(
    config: Config,
    storage: Storage,
    encryption: Encryption | None,
    command: list[str],
    environment: dict[str, str],
    cluster_size: int,
    replicas: Sequence[Destination] = (),
) -> Taken:
    """pg_basebackup (`command`: the program and its incremental flag) through the encoders
    into the spool and S3, then from the spool file to each replica; with
    BASEBACKUP_INCREMENTAL, its manifest kept for the next."""
    started = pendulum.now("UTC")
    label = timestamp(started)
    suffix = encoding_suffix(config.backup.compression.algorithm, encryption is not None)
    folder = base_folder(config.s3.prefix, started)
    key = f"{folder}{BASE_OBJECT}{suffix}"
    argv = [
        *command,
        "--pgdata=-",
        "--format=tar",
        "--wal-method=fetch",
        "--checkpoint=fast",
        "--verbose",
        "--no-password",
        f"--label=moonflower {label}",
    ]
    state_dir = state_directory(config.backup)
    journal = UploadJournal(state_dir, config.s3.bucket, config.s3.endpoint)
    spool = config.backup.spool_dir
    with (
        spool_file(spool, ".tar" + suffix) as spooled,
        spool_file(spool, ".manifest") as manifest,
        spool_file(spool, ".manifest" + suffix) as encoded_manifest,
        encoding_stages(config.backup.compression, encryption) as stages,
        upload_transaction(
            journal,
            lambda: storage,
            key,
            spooled,
            TAR_TYPE,
            cluster_size,
            config.s3.checksum == ChecksumMode.WHEN_SUPPORTED,
        ) as upload,
        replica_uploads(
            replicas,
            lambda replica: f"{base_folder(replica.prefix, started)}{BASE_OBJECT}{suffix}",
            spooled,
            TAR_TYPE,
            cluster_size,
            state_dir,
        ) as copies,
    ):
        with (
            step("basebackup"),
            spooled.open("wb") as output,
            upload.producing(),
            copies.producing(),
            tapped(config, manifest) as tap,
        ):
            base = Stage("pg_basebackup", argv, environment)
            tails = runner.run([base, *tap, *stages], output)
        start_lsn, timeline, stop_lsn = wal_points(list(tails[0].lines))
        stopped = pendulum.now("UTC")
        with step("upload"):
            uploaded = upload.upload()
            digest = file_sha256(spooled)  # the whole file's, whichever way it went up
            manifest_key = manifest_sha256 = None
            if config.wal.incremental:
                from moonflower.pitr.incremental import MANIFEST, keep_manifest

                manifest_key = f"{folder}{MANIFEST}{suffix}"
                manifest_sha256 = keep_manifest(
                    config, storage, encryption, label, manifest, manifest_key, encoded_manifest
                )

        with step("replicas"):
            replicated = copies.upload(f"base backup {label}")
            if manifest_key is not None and replicated.stored:
                from moonflower.pitr.incremental import MANIFEST, MANIFEST_TYPE

                def store(replica: Destination) -> None:
                    there = f"{base_folder(replica.prefix, started)}{MANIFEST}{suffix}"
                    store_file(state_dir, replica, there, encoded_manifest, MANIFEST_TYPE)

                holding = [replica for replica in replicas if replica.name in replicated.stored]
                what = f"the manifest of base backup {label}"
                replicated = replicated.then(store_on_replicas(holding, what, store, state_dir))
    return Taken(
        label,
        key,
        started,
        stopped,
        start_lsn,
        timeline,
        stop_lsn,
        uploaded.size,
        digest,
        manifest_key,
        manifest_sha256,
        replicated,
    )


def tapped(config: Config, manifest: Path) -> contextlib.AbstractContextManager[list[Stage]]:
    """With BASEBACKUP_INCREMENTAL, a `tee` that hands the raw tar's manifest to `manifest`."""
    if not config.wal.incremental:
        return contextlib.nullcontext([])
    from moonflower.pitr.incremental import manifest_tap

    return manifest_tap(config.backup.spool_dir, manifest)


def write_description(storage: Storage, config: Config, record: BaseBackupRecord) -> None:
    key = record.key.rsplit("/", 1)[0] + "/" + BASE_DESCRIPTION
    with spool_file(config.backup.spool_dir, ".json") as path:
        path.write_text(json.dumps(asdict(record), indent=2) + "\n")
        storage.upload(path, key, JSON_TYPE)
