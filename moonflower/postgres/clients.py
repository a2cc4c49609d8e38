"""PostgreSQL client side: connection environment, server version, a pg_dump new enough for it."""

import contextlib
import functools
import glob
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from moonflower.config.model import PostgresConfig
from moonflower.errors import DumpError, StageFailed
from moonflower.output.logs import log
from moonflower.pipeline.runner import Stage, capture
from moonflower.pipeline.spool import owned_prefix

CONNECT_TIMEOUT_SECONDS = 15
MAINTENANCE_DATABASE = "postgres"
"""Where to connect when no particular database is meant (globals, CREATE/DROP DATABASE)."""
VERSION_PATTERN = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
DEBIAN_CLIENTS = "/usr/lib/postgresql/*/bin"


@dataclass(frozen=True)
class ClientTool:
    path: Path
    major: int
    version: str


@dataclass(frozen=True)
class ServerVersion:
    major: int
    text: str


def escape_passfile_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def passfile(password: str, directory: Path) -> Iterator[Path]:
    """A 0600 libpq password file that matches any host, removed on exit."""
    descriptor, name = tempfile.mkstemp(prefix=owned_prefix(), suffix=".pgpass", dir=directory)
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


def client_version(path: Path) -> ClientTool | None:
    try:
        output = capture(Stage(f"{path.name} --version", [str(path), "--version"]))
    except StageFailed:
        return None
    match = VERSION_PATTERN.search(output)
    if not match:
        return None
    version = f"{match.group(1)}.{match.group(2)}" if match.group(2) else match.group(1)
    return ClientTool(path, int(match.group(1)), version)


def candidate_paths(program: str, configured: Path | None) -> list[Path]:
    """Where to look for a PostgreSQL client program, in order of preference."""
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured.parent / program if configured.name != program else configured)
    path_directories = os.environ.get("PATH", os.defpath).split(os.pathsep)
    candidates.extend(Path(directory) / program for directory in path_directories if directory)
    debian = sorted(
        (Path(directory) / program for directory in glob.glob(DEBIAN_CLIENTS)),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    unique: dict[Path, Path] = {}
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            # Keep the name as found: Debian's pg_wrapper decides what to run from argv[0].
            unique.setdefault(path.resolve(), path)
    return list(unique.values())


@functools.lru_cache(maxsize=16)
def find_client(program: str, server: ServerVersion, configured: Path | None) -> ClientTool:
    """The first candidate whose major version is at least the server's (cached per process)."""
    seen: list[ClientTool] = []
    for path in candidate_paths(program, configured):
        tool = client_version(path)
        if tool is None:
            continue
        if tool.major >= server.major:
            if seen:
                log.info(
                    "%s %s at %s is older than the server (%s); using %s %s at %s",
                    program,
                    seen[0].version,
                    seen[0].path,
                    server.text,
                    program,
                    tool.version,
                    tool.path,
                )
            return tool
        seen.append(tool)
    if not seen:
        raise DumpError(f"no {program} found (install the PostgreSQL client, or set PG_DUMP_PATH)")
    newest = max(seen, key=lambda tool: tool.major)
    raise DumpError(
        f"{program} is older than the server: server version {server.text}, newest {program} "
        f"found is version {newest.version} ({newest.path}); install {program} {server.major} "
        "or newer, or set PG_DUMP_PATH"
    )


def any_psql(configured: Path | None) -> Path:
    paths = candidate_paths("psql", configured)
    if not paths:
        raise DumpError("no psql found to query the server (install the PostgreSQL client)")
    return paths[0]


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


def parse_version(output: str) -> ServerVersion:
    number, _, text = output.partition("|")
    if not number.isdigit():
        raise DumpError(f"unexpected answer to the server version query: {output[:80]!r}")
    return ServerVersion(int(number) // 10000, text.split()[0] if text else number)


@functools.lru_cache(maxsize=16)
def newest_client(program: str, server: ServerVersion, configured: Path | None) -> ClientTool:
    """The newest candidate, which must be at least as new as the server.

    For restores: a newer psql reads every older dump, while an older one may not understand
    what a newer pg_dump wrote (such as `\\restrict`).
    """
    tools = [tool for tool in map(client_version, candidate_paths(program, configured)) if tool]
    if not tools:
        raise DumpError(f"no {program} found (install the PostgreSQL client, or set PG_DUMP_PATH)")
    newest = max(tools, key=lambda tool: tool.major)
    if newest.major < server.major:
        raise DumpError(
            f"{program} is older than the server: server version {server.text}, newest "
            f"{program} found is version {newest.version} ({newest.path}); install {program} "
            f"{server.major} or newer"
        )
    return newest


def psql_query(psql: Path, environment: dict[str, str], query: str) -> str:
    argv = [str(psql), "-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-c", query]
    return capture(Stage("psql", argv, env=environment))
