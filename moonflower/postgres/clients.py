"""PostgreSQL client programs (pg_dump, pg_dumpall, psql, pg_restore): where they are, their
versions, and which one is new enough for the server."""

import functools
import glob
import os
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from moonflower.core.errors import DumpError, StageFailed
from moonflower.core.logs import log
from moonflower.postgres.queries import ServerVersion
from moonflower.proc.runner import Stage, capture

VERSION_PATTERN = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
DEBIAN_CLIENTS = "/usr/lib/postgresql/*/bin"


@dataclass(frozen=True)
class ClientTool:
    path: Path
    major: int
    version: str


_probes: dict[Path, "Future[ClientTool | None]"] = {}
_probes_lock = threading.Lock()


def warm_up(program: str, configured: Path | None, every: bool = False) -> None:
    """Ask the preferred `program` (or, with `every`, each candidate at once) for its
    version in the background, while the server is asked for its own: the answers are
    waiting when the dump or the restore is planned."""
    paths = candidate_paths(program, configured)
    for path in paths if every else paths[:1]:
        threading.Thread(target=client_version, args=(path,), daemon=True).start()


def client_version(path: Path) -> ClientTool | None:
    """The program's version, asked once per process (concurrent callers share the answer)."""
    with _probes_lock:
        probe = _probes.get(path)
        asking = probe is None
        if probe is None:
            probe = _probes[path] = Future()
    if asking:
        try:
            probe.set_result(_ask_version(path))
        except BaseException as error:
            probe.set_exception(error)
            with _probes_lock:
                _probes.pop(path, None)
    return probe.result()


def _ask_version(path: Path) -> ClientTool | None:
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
        if is_program(path):
            # Keep the name as found: Debian's pg_wrapper decides what to run from argv[0].
            unique.setdefault(path.resolve(), path)
    return list(unique.values())


def is_program(path: Path) -> bool:
    """An executable file; a PATH entry this user may not look into holds none."""
    try:
        return path.is_file() and os.access(path, os.X_OK)
    except OSError:
        return False


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


def exact_client(program: str, major: int, configured: Path | None) -> ClientTool:
    """A program of exactly this major version (a server binary must match its data
    directory)."""
    tools = [tool for tool in map(client_version, candidate_paths(program, configured)) if tool]
    for tool in tools:
        if tool.major == major:
            return tool
    found = ", ".join(f"{tool.version} ({tool.path})" for tool in tools) or "none"
    raise DumpError(f"{program} {major} is needed and not installed (found: {found})")


def any_psql(configured: Path | None) -> Path:
    paths = candidate_paths("psql", configured)
    if not paths:
        raise DumpError("no psql found to query the server (install the PostgreSQL client)")
    return paths[0]


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
