"""Getting a backup ready to restore: downloaded to a spool file, checked against its
recorded SHA-256 and read to the end, before any database is touched.

A plain SQL backup with Moonflower's SHA-256 (or S3's composite one, for a multipart
upload) is read while it downloads: the object flows into its spool file and, on the way,
through the decoders into `tail -c`, so proving it complete costs no second pass over the
file. Nothing is decided before the whole object is
in and its checksum matched: a mismatch is the checksum's failure, whatever the decoders
said. When the stream breaks, or the content is not what its name says, the backup is
downloaded again and checked step by step (`fetched`, then `read_to_the_end`).
"""

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from moonflower.catalog.logical import BackupInfo
from moonflower.core.errors import MoonflowerError, RestoreError, StorageError
from moonflower.core.logs import log, step
from moonflower.core.progress import StepProgress
from moonflower.logical.plans import CUSTOM_EXTENSION, CUSTOM_MAGIC
from moonflower.logical.readback import (
    PlainSql,
    Trust,
    check_encrypted,
    decoding_stages_of,
    expected_of,
    fetched,
    format_of,
    judged,
    last_bytes,
    read_to_the_end,
)
from moonflower.proc.feeder import CHUNK_BYTES, Feeder, StreamBroken, first_bytes
from moonflower.proc.gpg import Decryption
from moonflower.proc.spool import spool_file
from moonflower.storage.fetch import RunningCheck, damaged
from moonflower.storage.gateway import Storage


@dataclass(frozen=True)
class Fetched:
    path: Path
    sql: PlainSql | None
    """What reading plain SQL to the end found; None for the custom format."""
    download_seconds: float
    check_seconds: float


@dataclass(frozen=True)
class Reader:
    """What reading a backup needs besides the backup itself."""

    storage: Storage
    spool_dir: Path
    trust: Trust
    decryption: Decryption
    pg_dump_path: Path | None


@contextlib.contextmanager
def fetched_and_read(reader: Reader, info: BackupInfo) -> Iterator[Fetched]:
    """The backup in a spool file, checked and read to the end (removed afterwards)."""
    expected = expected_of(info)
    if expected.checkable and not info.backup.extension.startswith(CUSTOM_EXTENSION):
        running = RunningCheck(expected)
        with spool_file(reader.spool_dir, info.backup.extension) as path:
            started = time.monotonic()
            try:
                with StepProgress("downloading", info.size) as progress:
                    feeder, end = stream_through_decoders(
                        reader, info, path, progress.advance, running
                    )
            except StreamBroken as broken:
                log.warning(
                    "reading %s while it downloads stopped (%s); downloading it whole instead",
                    info.key,
                    broken,
                )
            else:
                downloaded = time.monotonic()
                plain = checked_stream(reader, info, path, feeder, end, running)
                yield Fetched(path, plain, downloaded - started, time.monotonic() - downloaded)
                return
    started = time.monotonic()
    with fetched(reader.storage, info, reader.spool_dir, reader.trust) as path:
        downloaded = time.monotonic()
        sql = read_to_the_end(path, reader.decryption, info, reader.spool_dir, reader.pg_dump_path)
        yield Fetched(path, sql, downloaded - started, time.monotonic() - downloaded)


@dataclass
class StreamEnd:
    """How the decoders fared on the stream, and the last bytes of the SQL they made."""

    failure: MoonflowerError | None
    last_bytes: bytes


def stream_through_decoders(
    reader: Reader,
    info: BackupInfo,
    path: Path,
    on_bytes: Callable[[int], None],
    running: RunningCheck,
) -> tuple[Feeder, StreamEnd]:
    """Download into `path` while the decoders read the same bytes. StreamBroken when the
    download broke, or when the start of the object is not plain SQL in a known form (the
    step-by-step way then says what is wrong, in its order)."""
    chunks = reader.storage.stream(info.key, CHUNK_BYTES)
    try:
        head = first_bytes(chunks)
        found = format_of(head)
    except (StorageError, RestoreError) as error:
        raise StreamBroken(str(error)) from None
    if head.startswith(CUSTOM_MAGIC):
        raise StreamBroken("it holds a custom-format archive")
    with (
        step("download"),
        path.open("wb") as copy,
        tempfile.NamedTemporaryFile(dir=reader.spool_dir) as ends,
    ):
        feeder = Feeder(chunks, head, copy, on_bytes, running)
        with open(ends.name, "wb") as output:
            stages = decoding_stages_of(found, reader.decryption, info)
            failure = feeder.feed(stages, last_bytes(), output)
        end = StreamEnd(failure, Path(ends.name).read_bytes())
    if feeder.error is not None:
        raise StreamBroken(str(feeder.error))
    if feeder.spool_error is not None:
        raise RestoreError("download", str(feeder.spool_error))
    return feeder, end


def checked_stream(
    reader: Reader,
    info: BackupInfo,
    path: Path,
    feeder: Feeder,
    end: StreamEnd,
    running: RunningCheck,
) -> PlainSql:
    """The same checks, in the same order, as a download checked step by step."""
    with step("checksum"):
        if not running.matches():
            raise damaged(info.key)
        log.info("checksum ok (%s)", running.expected.shown)
        check_encrypted(info, reader.trust, format_of(feeder.head).encrypted)
    with step("read"):
        if end.failure is not None:
            raise end.failure
        return judged(end.last_bytes, path, reader.decryption, info, reader.spool_dir)
