"""Reading a backup back, before anything is restored from it: download, check its
checksum, recognise its format, decode it to the end and check that it is complete.

A backup is untrusted input (anyone who can write to the bucket can replace it), so restores
load it with psql in restricted mode: the file's own psql meta-commands (`\\!` runs a shell)
cannot run, only SQL.
"""

import contextlib
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from moonflower.catalog.logical import BackupInfo
from moonflower.core.errors import RestoreError, StorageError
from moonflower.core.logs import log, step
from moonflower.core.progress import StepProgress, stdin_position
from moonflower.logical.plans import CUSTOM_EXTENSION, CUSTOM_MAGIC
from moonflower.postgres.clients import ClientTool, newest_client
from moonflower.postgres.queries import ServerVersion
from moonflower.proc import runner
from moonflower.proc.codec import decompress_stage, sniff
from moonflower.proc.gpg import Decryption
from moonflower.proc.openpgp import (
    PUBLIC_KEY_SESSION_KEY_TAG,
    SYMMETRIC_SESSION_KEY_TAG,
    packet_tag,
)
from moonflower.proc.runner import Pipeline, Stage
from moonflower.proc.spool import spool_file
from moonflower.storage.fetch import Expected, fetch_checked
from moonflower.storage.gateway import Storage

PLAIN_SQL_STARTS = (b"--", b"SET ", b"\n", b"\\")
ENDS_LINES = 40
"""Lines read from the start of the SQL: its header (the restrict key)."""
END_BYTES = 65536
"""Bytes kept from the end of the SQL: the trailer is in its last few hundred."""
TRAILER = re.compile(rb"^-- PostgreSQL database (cluster )?dump complete$", re.MULTILINE)
"""pg_dump ends with "database dump complete", pg_dumpall with "database cluster dump complete"."""
RESTRICT_LINE = re.compile(rb"^\\restrict (\S*)$", re.MULTILINE)
RESTRICT_KEY = re.compile(r"[A-Za-z0-9]{1,128}")
ANY_SERVER = ServerVersion(0, "any")


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
        return format_of(handle.read(16))


def format_of(head: bytes) -> Format:
    """The format the first 16 bytes of a backup show."""
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


@dataclass(frozen=True)
class Trust:
    """What a backup must show before it is read: Moonflower's checksum, and encryption when
    encryption is configured. `allow_unverified` (the operator's explicit word) turns a
    refusal into a warning."""

    expect_encrypted: bool = False
    allow_unverified: bool = False

    def refuse(self, step_name: str, reason: str) -> None:
        if not self.allow_unverified:
            raise RestoreError(
                step_name, f"{reason}; if you trust where it came from, add --allow-unverified"
            )
        log.warning("%s; going on because of --allow-unverified", reason)


def expected_of(info: BackupInfo) -> Expected:
    return Expected(sha256=info.sha256, composite=info.s3_checksum, part_size=info.part_size)


def unverifiable(info: BackupInfo, trust: Trust) -> None:
    """A backup without a checksum written by Moonflower is refused unless allowed."""
    trust.refuse(
        "checksum",
        f"{info.key} has no recorded SHA-256 (made by the original image, or copied into "
        "the bucket), so nothing shows it is a backup Moonflower wrote",
    )


def check_encrypted(info: BackupInfo, trust: Trust, encrypted: bool) -> None:
    """With encryption configured, an unencrypted backup may have been planted."""
    if trust.expect_encrypted and not encrypted:
        trust.refuse(
            "checksum",
            f"encryption is configured, but {info.key} is not encrypted: anyone who can write "
            "to the bucket could have planted it",
        )


@contextlib.contextmanager
def fetched(storage: Storage, info: BackupInfo, spool_dir: Path, trust: Trust) -> Iterator[Path]:
    """The backup downloaded to a spool file and checked against its recorded checksum."""
    expected = expected_of(info)
    if not expected.checkable:
        unverifiable(info, trust)
    with contextlib.ExitStack() as stack:
        progress = stack.enter_context(StepProgress("downloading", info.size))
        try:
            path = stack.enter_context(
                fetch_checked(
                    storage,
                    info.key,
                    spool_dir,
                    info.backup.extension,
                    expected if expected.checkable else None,
                    progress.advance,
                )
            )
        except StorageError as error:
            raise RestoreError("download", str(error)) from None
        if expected.checkable:
            log.info("checksum ok (%s)", expected.shown)
        check_encrypted(info, trust, detect_format(path).encrypted)
        yield path


def decoding_stages(
    path: Path, decryption: Decryption, info: BackupInfo
) -> contextlib.AbstractContextManager[list[Stage]]:
    """Stages turning the file into SQL: [gpg --decrypt] | [gzip -dc or zstd -dc]."""
    return decoding_stages_of(detect_format(path), decryption, info)


@contextlib.contextmanager
def decoding_stages_of(
    found: Format, decryption: Decryption, info: BackupInfo
) -> Iterator[list[Stage]]:
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


@dataclass(frozen=True)
class PlainSql:
    """What the read to the end learned of a plain SQL backup."""

    restrict_key: str | None
    """The key of the dump's own `\\restrict` line (pg_dump 17.6 and later), if any."""


def read_plain_to_the_end(
    path: Path, decryption: Decryption, info: BackupInfo, spool_dir: Path
) -> PlainSql:
    """Decrypt and decompress the whole backup; it must end with pg_dump's (or
    pg_dumpall's) "dump complete" trailer, or it is truncated."""
    with step("read"), tempfile.NamedTemporaryFile(dir=spool_dir) as ends:
        with decoding_stages(path, decryption, info) as stages:
            run_with_progress([*stages, last_bytes()], path, "reading", ends.name)
        return judged(Path(ends.name).read_bytes(), path, decryption, info, spool_dir)


def last_bytes() -> Stage:
    """The stage that keeps the end of the SQL. `tail -c` (on a pipe it costs a tenth of
    awk's CPU, and less than `tail -n`, which looks for every newline)."""
    return Stage("tail", ["tail", "-c", str(END_BYTES)], {"LC_ALL": "C"})


def judged(
    end: bytes, path: Path, decryption: Decryption, info: BackupInfo, spool_dir: Path
) -> PlainSql:
    """The verdict on the SQL whose last bytes are `end`: complete or truncated, and its
    restrict key. The first lines come from a second, short decode that `head` stops."""
    trailer = end.splitlines()[1:]  # the first may be cut
    with (
        tempfile.NamedTemporaryFile(dir=spool_dir) as start,
        decoding_stages(path, decryption, info) as stages,
        path.open("rb") as source,
    ):
        first_lines = Stage("head", ["head", "-n", str(ENDS_LINES)], {"LC_ALL": "C"})
        with open(start.name, "wb") as output:
            runner.run([*stages, first_lines], output, source, last_decides=True)
        header = Path(start.name).read_bytes()
    if not any(TRAILER.match(line) for line in trailer):
        raise RestoreError(
            "read", 'the SQL does not end with pg_dump\'s "dump complete" line: it is truncated'
        )
    found = RESTRICT_LINE.search(header)
    if found is None:
        return PlainSql(restrict_key=None)
    key = found.group(1).decode("ascii", "replace")
    if not RESTRICT_KEY.fullmatch(key):
        raise RestoreError("read", "the SQL starts with a malformed \\restrict line")
    return PlainSql(restrict_key=key)


def read_custom_to_the_end(
    path: Path, decryption: Decryption, info: BackupInfo, spool_dir: Path, pg_dump_path: Path | None
) -> None:
    """pg_restore reads the whole custom-format archive, data included, into nothing: a
    truncated or damaged archive fails here, before any database is touched."""
    with step("read"), plain_dump_file(path, info, decryption, spool_dir) as dump:
        tool = newest_client("pg_restore", ANY_SERVER, pg_dump_path)
        read_all = Stage("pg_restore", [str(tool.path), "--file=/dev/null", str(dump)])
        runner.run([read_all])


def read_to_the_end(
    path: Path, decryption: Decryption, info: BackupInfo, spool_dir: Path, pg_dump_path: Path | None
) -> PlainSql | None:
    """The complete-before-it-counts check for either format; what plain SQL revealed."""
    if is_custom_format(path, info):
        read_custom_to_the_end(path, decryption, info, spool_dir, pg_dump_path)
        return None
    return read_plain_to_the_end(path, decryption, info, spool_dir)


def restricted_psql(
    tool: ClientTool, environment: dict[str, str], sql: PlainSql, stop_on_error: bool = True
) -> list[Stage]:
    """Stages that feed the SQL to psql in restricted mode, under a key only this process
    knows, so no meta-command in the file runs. The dump's own `\\restrict`/`\\unrestrict`
    lines (its key is known from the read) are taken out first: inside our restricted mode
    they would be refused."""
    key = secrets.token_hex(16)
    argv = [str(tool.path), "-X", "-q", "-w"]
    if stop_on_error:
        argv += ["-v", "ON_ERROR_STOP=1"]
    argv += ["-c", f"\\restrict {key}", "-f", "-"]
    stages = []
    if sql.restrict_key is not None:
        own = sql.restrict_key
        # Whole lines, fixed strings: grep -vxF costs a quarter of sed's CPU on a big dump.
        lines = ["-e", f"\\restrict {own}", "-e", f"\\unrestrict {own}"]
        stages.append(Stage("grep", ["grep", "-a", "-v", "-x", "-F", *lines], {"LC_ALL": "C"}))
    stages.append(Stage("psql", argv, env=environment))
    return stages
