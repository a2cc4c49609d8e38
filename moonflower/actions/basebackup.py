"""A physical base backup: `pg_basebackup` writing one tar (data files, the WAL needed to
reach consistency, and the backup manifest) to stdout, compressed and encrypted on its way
into the spool, then uploaded with a small JSON description beside it.

The tar restores on its own: it carries the WAL from its start to its end point, so it is
usable even if the WAL archive is lost.
"""

import contextlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import pendulum

from moonflower.config.model import ChecksumMode, Config
from moonflower.errors import DumpError, MoonflowerError
from moonflower.output.logs import log, step
from moonflower.output.sizes import human_size
from moonflower.pipeline import runner
from moonflower.pipeline.encoding import encoding_stages
from moonflower.pipeline.gpg import Encryption
from moonflower.pipeline.runner import Stage
from moonflower.pipeline.spool import spool_file
from moonflower.postgres.clients import any_psql, find_client
from moonflower.postgres.connection import MAINTENANCE_DATABASE, libpq_environment, passfile
from moonflower.postgres.queries import psql_query, server_version
from moonflower.postgres.replication import ensure_slot
from moonflower.runtime.lifecycle import shutdown
from moonflower.runtime.state_dir import state_directory
from moonflower.s3.checksums import file_sha256
from moonflower.s3.gateway import Storage
from moonflower.s3.journal import UploadJournal
from moonflower.s3.keys import timestamp
from moonflower.s3.objects import part_size_for
from moonflower.s3.physical_keys import (
    BASE_DESCRIPTION,
    BASE_OBJECT,
    base_folder,
    encoding_suffix,
)
from moonflower.s3.streaming import StreamingUpload, streaming_upload

START_POINT = re.compile(r"write-ahead log start point: (\S+) on timeline (\d+)")
END_POINT = re.compile(r"write-ahead log end point: (\S+)")
SEGMENT_SIZE_QUERY = "SELECT pg_size_bytes(current_setting('wal_segment_size'))"
CLUSTER_SIZE_QUERY = "SELECT sum(pg_database_size(oid)) FROM pg_catalog.pg_database"
"""An upper bound of the tar's size, to size the parts of the upload that runs beside it."""
TAR_TYPE = "application/x-tar"
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class BaseBackupRecord:
    """backup.json: what a restore needs to know before it downloads the tar."""

    label: str
    key: str
    start_lsn: str
    stop_lsn: str
    timeline: int
    start_time: str
    stop_time: str
    """When pg_basebackup ended: the earliest moment a recovery from it can stop at."""
    server_version: str
    server_major: int
    segment_size: int
    size: int
    sha256: str
    compression: str
    encrypted: bool

    @classmethod
    def from_json(cls, text: bytes) -> "BaseBackupRecord":
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return cls(**{name: document[name] for name in cls.__dataclass_fields__})

    @property
    def stopped(self) -> pendulum.DateTime:
        moment = pendulum.parse(self.stop_time)
        assert isinstance(moment, pendulum.DateTime)
        return moment


def wal_points(stderr_lines: list[str]) -> tuple[str, int, str]:
    """Start LSN, timeline and end LSN from pg_basebackup's --verbose output."""
    text = "\n".join(stderr_lines)
    start, end = START_POINT.search(text), END_POINT.search(text)
    if start is None or end is None:
        raise DumpError("pg_basebackup did not report its WAL start and end points")
    return start.group(1), int(start.group(2)), end.group(1)


def take_base_backup(config: Config, encryption: Encryption | None) -> BaseBackupRecord:
    pg = config.postgres
    storage = Storage(config.s3)
    with step("connect"):
        storage.check_bucket()
    with passfile(pg.password, config.backup.spool_dir) as password:
        environment = libpq_environment(pg, password, MAINTENANCE_DATABASE)
        if config.wal.stream:
            # The slot holds the WAL from here on until the stream has it: a base backup
            # taken before the stream first runs still starts an unbroken chain.
            ensure_slot(pg, config.wal.slot, environment)
        psql = any_psql(pg.pg_dump_path)
        server = server_version(psql, environment)
        segment_size = int(psql_query(psql, environment, SEGMENT_SIZE_QUERY))
        tool = find_client("pg_basebackup", server, pg.pg_dump_path)
        log.info("server %s, pg_basebackup %s (%s)", server.text, tool.version, tool.path)
        started = pendulum.now("UTC")
        label = timestamp(started)
        suffix = encoding_suffix(config.backup.compression.algorithm, encryption is not None)
        key = f"{base_folder(config.s3.prefix, started)}{BASE_OBJECT}{suffix}"
        argv = [
            str(tool.path),
            "--pgdata=-",
            "--format=tar",
            "--wal-method=fetch",
            "--checkpoint=fast",
            "--verbose",
            "--no-password",
            f"--label=moonflower {label}",
        ]
        cluster_size = int(psql_query(psql, environment, CLUSTER_SIZE_QUERY) or 0)
        journal = UploadJournal(
            state_directory(config.backup), config.s3.bucket, config.s3.endpoint
        )
        with shutdown.critical():
            journal.started(key)
        finished = False
        try:
            with (
                spool_file(config.backup.spool_dir, ".tar" + suffix) as spooled,
                encoding_stages(config.backup.compression, encryption) as stages,
            ):
                with (
                    step("basebackup"),
                    spooled.open("wb") as output,
                    early_upload(config, storage, key, spooled, cluster_size) as stream,
                ):
                    base = Stage("pg_basebackup", argv, environment)
                    tails = runner.run([base, *stages], output)
                    uploaded = stream.finish() if stream is not None else None
                start_lsn, timeline, stop_lsn = wal_points(list(tails[0].lines))
                stopped = pendulum.now("UTC")
                with step("upload"):
                    if uploaded is None:
                        uploaded = storage.upload(spooled, key, TAR_TYPE)
                    digest = file_sha256(spooled)  # the whole file's, whichever way it went up
            finished = True
        finally:
            with shutdown.critical():
                if not finished:
                    with contextlib.suppress(MoonflowerError):
                        storage.abort_uploads_for(key)
                journal.finished(key)
    record = BaseBackupRecord(
        label=label,
        key=key,
        start_lsn=start_lsn,
        stop_lsn=stop_lsn,
        timeline=timeline,
        start_time=started.isoformat(),
        stop_time=stopped.isoformat(),
        server_version=server.text,
        server_major=server.major,
        segment_size=segment_size,
        size=uploaded.size,
        sha256=digest,
        compression=str(config.backup.compression.algorithm),
        encrypted=encryption is not None,
    )
    write_description(storage, config, record)
    log.info(
        "base backup %s stored: %s, WAL %s to %s on timeline %d",
        label,
        human_size(record.size),
        start_lsn,
        stop_lsn,
        timeline,
    )
    return record


def early_upload(
    config: Config, storage: Storage, key: str, spooled: Path, size_hint: int
) -> contextlib.AbstractContextManager[StreamingUpload | None]:
    """Parts go up while pg_basebackup still runs (when S3 checksums are on: they verify
    such objects); a failure falls back to uploading the finished file."""
    if config.s3.checksum != ChecksumMode.WHEN_SUPPORTED:
        return contextlib.nullcontext()
    return streaming_upload(lambda: storage, key, spooled, part_size_for(size_hint), TAR_TYPE)


def write_description(storage: Storage, config: Config, record: BaseBackupRecord) -> None:
    key = record.key.rsplit("/", 1)[0] + "/" + BASE_DESCRIPTION
    with spool_file(config.backup.spool_dir, ".json") as path:
        path.write_text(json.dumps(asdict(record), indent=2) + "\n")
        storage.upload(path, key, JSON_TYPE)
