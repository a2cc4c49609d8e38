"""What Moonflower asks the server, through psql: its version, the databases and their sizes."""

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from moonflower.config.model import PostgresConfig
from moonflower.core.errors import DumpError
from moonflower.postgres.connection import MAINTENANCE_DATABASE, libpq_environment
from moonflower.proc.runner import Stage, capture

LIST_DATABASES = (
    "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate "
    "ORDER BY datname"
)


@dataclass(frozen=True)
class ServerVersion:
    major: int
    text: str


VERSION_QUERY = (
    "SELECT current_setting('server_version_num') || '|' || current_setting('server_version')"
)
SIZE_QUERY = "pg_database_size(current_database())"


def server_version(psql: Path, environment: dict[str, str]) -> ServerVersion:
    return parse_version(psql_query(psql, environment, VERSION_QUERY))


def server_version_and_size(psql: Path, environment: dict[str, str]) -> tuple[ServerVersion, int]:
    """The server's version, and the database's size on disk (an upper bound for its
    compressed dump), in one round trip."""
    output = psql_query(psql, environment, f"{VERSION_QUERY} || '|' || {SIZE_QUERY}")
    version, _, size = output.rpartition("|")
    return parse_version(version), int(size) if size.isdigit() else 0


SIZES_QUERY = (
    "SELECT 'v|' || current_setting('server_version_num') || '|' "
    "|| current_setting('server_version') UNION ALL "
    "SELECT 'd|' || encode(convert_to(datname, 'UTF8'), 'hex') || '|' || pg_database_size(oid) "
    "FROM pg_catalog.pg_database WHERE datallowconn AND has_database_privilege(oid, 'CONNECT')"
)


@dataclass(frozen=True)
class ClusterFacts:
    """What a run needs to know of the server before each dump, asked once for all databases."""

    server: ServerVersion
    sizes: dict[str, int]


def cluster_facts(psql: Path, environment: dict[str, str]) -> ClusterFacts:
    """The server's version, and the size on disk of every database this user may connect to
    (names travel hex-encoded, so any name survives the text output)."""
    version = ""
    sizes: dict[str, int] = {}
    for row in psql_query(psql, environment, SIZES_QUERY).splitlines():
        kind, _, rest = row.partition("|")
        if kind == "v":
            version = rest
        elif kind == "d":
            name, _, size = rest.partition("|")
            sizes[bytes.fromhex(name).decode("utf-8")] = int(size) if size.isdigit() else 0
    return ClusterFacts(parse_version(version), sizes)


REPLICATION_QUERY = (
    "SELECT rolreplication OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
)


def may_replicate(psql: Path, environment: dict[str, str]) -> bool:
    """Whether the connected user has the REPLICATION attribute (or is a superuser)."""
    return psql_query(psql, environment, REPLICATION_QUERY) == "t"


def parse_version(output: str) -> ServerVersion:
    number, _, text = output.partition("|")
    if not number.isdigit():
        raise DumpError(f"unexpected answer to the server version query: {output[:80]!r}")
    return ServerVersion(int(number) // 10000, text.split()[0] if text else number)


def psql_query(psql: Path, environment: dict[str, str], query: str) -> str:
    argv = [str(psql), "-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-c", query]
    return capture(Stage("psql", argv, env=environment))


def list_databases(pg: PostgresConfig, password_file: Path, psql: Path) -> list[str]:
    """Every database that allows connections, templates excepted."""
    environment = libpq_environment(pg, password_file, MAINTENANCE_DATABASE)
    output = psql_query(psql, environment, LIST_DATABASES)
    return [line for line in output.splitlines() if line]


def excluded(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
