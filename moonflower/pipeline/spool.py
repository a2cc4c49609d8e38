"""Spool files: where a dump is written before (and while) it is uploaded, and how the
leftovers of a killed Moonflower are recognised and removed.

SIGTERM and SIGINT are cleaned up on the spot. SIGKILL (or a power cut) leaves spool files,
password files and GnuPG homes; each is named with the pid of the process that made it
(`moonflower-<pid>-…`), so a later start can tell what is stale (its process is gone).
"""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from moonflower.output.logs import log
from moonflower.runtime.liveness import is_alive

OWNED_PREFIX = "moonflower-"
SPOOL_SUFFIX = ".part"


def owned_prefix(kind: str = "") -> str:
    """The name prefix of files this process owns, e.g. `moonflower-1234-`."""
    return f"{OWNED_PREFIX}{kind}{os.getpid()}-"


@contextlib.contextmanager
def spool_file(directory: Path, extension: str) -> Iterator[Path]:
    """A 0600 file for one artifact, removed on every path out of the block."""
    descriptor, name = tempfile.mkstemp(
        prefix=owned_prefix(), suffix=f"{extension}{SPOOL_SUFFIX}", dir=directory
    )
    os.close(descriptor)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def owner_pid(name: str, kind: str = "") -> int | None:
    """The pid in `moonflower-[kind]<pid>-<random>`; None for any other name."""
    rest = name.removeprefix(OWNED_PREFIX + kind)
    if rest == name:
        return None
    number, dash, random_part = rest.partition("-")
    if not (number.isdigit() and dash and random_part):
        return None
    return int(number)


def ours(entry: Path) -> bool:
    """Made by this user: another user's leftovers are theirs to clean."""
    try:
        return entry.lstat().st_uid == os.getuid()
    except OSError:
        return False


def remove_stale_files(
    directory: Path, kind: str = "", before_removing: Callable[[Path], None] | None = None
) -> list[Path]:
    """Remove `moonflower-[kind]<pid>-*` entries of processes that are gone; directories are
    first handed to `before_removing` (a GnuPG home's agent is stopped)."""
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        pid = owner_pid(entry.name, kind)
        if pid is None or pid == os.getpid() or is_alive(pid) or not ours(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            if before_removing is not None:
                before_removing(entry)
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    for entry in removed:
        log.warning("removed %s, left behind by a Moonflower process that was killed", entry)
    return removed
