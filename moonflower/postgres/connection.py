"""Connecting to PostgreSQL without a credential on any command line: a temporary 0600
password file and the libpq environment that points the client programs at it."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from moonflower.config.model import PostgresConfig
from moonflower.core.errors import DumpError
from moonflower.proc.spool import owned_prefix

CONNECT_TIMEOUT_SECONDS = 15
MAINTENANCE_DATABASE = "postgres"
"""Where to connect when no particular database is meant (globals, CREATE/DROP DATABASE)."""


def escape_passfile_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def passfile(password: str, directory: Path) -> Iterator[Path]:
    """A 0600 libpq password file that matches any host, removed on exit."""
    try:
        prefix = owned_prefix(directory)
        descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=".pgpass", dir=directory)
    except OSError as error:
        raise DumpError(
            f"cannot create the password file in the spool directory {directory} "
            f"(BACKUP_SPOOL_DIR): {error.strerror or error}"
        ) from None
    path = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(f"*:*:*:*:{escape_passfile_field(password)}\n")
        yield path
    finally:
        path.unlink(missing_ok=True)


def libpq_environment(pg: PostgresConfig, password_file: Path, database: str) -> dict[str, str]:
    """Everything libpq needs, so no credential ever reaches a command line."""
    return {
        "PGHOST": pg.host,
        "PGPORT": str(pg.port),
        "PGUSER": pg.user,
        "PGDATABASE": database,
        "PGPASSFILE": str(password_file),
        "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
        "PGAPPNAME": "moonflower",
    }
