"""What to run for one backup item: a database (plain SQL or pg_dump's custom format) or the
cluster's globals (roles, tablespaces, role settings: pg_dumpall --globals-only)."""

from dataclasses import dataclass
from pathlib import Path

from moonflower.catalog.keys import GLOBALS_NAME, GLOBALS_SHOWN, encode_name
from moonflower.config.compression import Algorithm, Compression
from moonflower.config.model import Config, DumpFormat
from moonflower.core.errors import DumpError
from moonflower.postgres.clients import ClientTool
from moonflower.postgres.connection import MAINTENANCE_DATABASE
from moonflower.proc.codec import check_header, sql_extension

CUSTOM_MAGIC = b"PGDMP"
CUSTOM_EXTENSION = ".dump"
COMPRESS_METHODS_SINCE = 16
"""pg_dump 16 added --compress=method:level (zstd and lz4 next to gzip)."""
CONTENT_TYPES = {
    "gzip": "application/gzip",
    "zstd": "application/zstd",
    "none": "application/sql",
    "custom": "application/octet-stream",
    "gpg": "application/pgp-encrypted",
}


@dataclass(frozen=True, kw_only=True)
class DumpPlan:
    name: str
    """The database, or GLOBALS_SHOWN."""
    key_name: str
    program: str
    arguments: tuple[str, ...]
    compression: Compression | None
    """The pipeline stage's compression; None when the dump compresses itself."""
    extension: str
    content_type: str

    def check(self, path: Path) -> None:
        if self.compression is not None:
            check_header(self.compression, path)
            return
        with path.open("rb") as handle:
            if handle.read(len(CUSTOM_MAGIC)) != CUSTOM_MAGIC:
                raise DumpError("the dump does not start like pg_dump's custom format")


def program_for(name: str) -> str:
    return "pg_dumpall" if name == GLOBALS_SHOWN else "pg_dump"


def connect_database_for(name: str) -> str:
    return MAINTENANCE_DATABASE if name == GLOBALS_SHOWN else name


def plan(name: str, tool: ClientTool, config: Config) -> DumpPlan:
    compression = config.backup.compression
    if name == GLOBALS_SHOWN:
        return DumpPlan(
            name=name,
            key_name=GLOBALS_NAME,
            program="pg_dumpall",
            arguments=("--globals-only", "--no-password", *lock_wait(config)),
            compression=compression,
            extension=sql_extension(compression),
            content_type=CONTENT_TYPES[compression.algorithm],
        )
    if config.backup.format == DumpFormat.CUSTOM:
        return DumpPlan(
            name=name,
            key_name=encode_name(name),
            program="pg_dump",
            arguments=(
                "--no-password",
                "--format=custom",
                *custom_compression(compression, tool),
                *lock_wait(config),
            ),
            compression=None,
            extension=CUSTOM_EXTENSION,
            content_type=CONTENT_TYPES["custom"],
        )
    return DumpPlan(
        name=name,
        key_name=encode_name(name),
        program="pg_dump",
        arguments=("--no-password", "--format=plain", *lock_wait(config)),
        compression=compression,
        extension=sql_extension(compression),
        content_type=CONTENT_TYPES[compression.algorithm],
    )


def lock_wait(config: Config) -> tuple[str, ...]:
    """pg_dump and pg_dumpall give up on a table lock after PG_LOCK_WAIT_TIMEOUT."""
    limit = config.postgres.lock_wait_timeout
    return () if limit is None else (f"--lock-wait-timeout={round(limit.seconds * 1000)}",)


def custom_compression(compression: Compression, tool: ClientTool) -> tuple[str, ...]:
    """pg_dump's own compression for the custom format (no second compressor on top)."""
    level = compression.effective_level
    if compression.algorithm == Algorithm.NONE:
        return ("--compress=0",)
    if tool.major >= COMPRESS_METHODS_SINCE:
        return (f"--compress={compression.algorithm}:{level}",)
    if compression.algorithm == Algorithm.GZIP:
        return (f"--compress={level}",)
    raise DumpError(
        f"BACKUP_COMPRESSION={compression.algorithm} with BACKUP_FORMAT=custom needs pg_dump "
        f"{COMPRESS_METHODS_SINCE} or newer (this one is {tool.version}); use gzip, or a "
        "newer pg_dump"
    )
