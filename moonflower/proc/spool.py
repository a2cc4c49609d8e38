"""Spool files: where a dump is written before (and while) it is uploaded, and how the
leftovers of a killed Moonflower are recognised and removed.

SIGTERM and SIGINT are cleaned up on the spot. SIGKILL (or a power cut) leaves spool files,
password files and GnuPG homes; each is named with the token of the run that made it
(`moonflower-<token>-…`), and that run holds a lock on `moonflower-<token>.lock` while it
lives (see `runtime.ownership`), so a later start can tell what is stale.
"""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from moonflower.core.logs import log
from moonflower.core.ownership import (
    OWNED_PREFIX,
    is_token,
    lease,
    ours,
    owner_is_live,
    remove_dead_locks,
)

SPOOL_SUFFIX = ".part"


def owned_prefix(directory: Path, kind: str = "") -> str:
    """The name prefix of files this run makes in `directory`, e.g. `moonflower-run3f…-`;
    the run's lock there is taken first."""
    lease.claim(directory)
    return f"{OWNED_PREFIX}{kind}{lease.token}-"


@contextlib.contextmanager
def spool_file(directory: Path, extension: str) -> Iterator[Path]:
    """A 0600 file for one artifact, removed on every path out of the block."""
    descriptor, name = tempfile.mkstemp(
        prefix=owned_prefix(directory), suffix=f"{extension}{SPOOL_SUFFIX}", dir=directory
    )
    os.close(descriptor)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def owner_of(name: str, kind: str = "") -> str | None:
    """The run token in `moonflower-[kind]<token>-<random>` (a pid in names made before
    locks); None for any other name."""
    rest = name.removeprefix(OWNED_PREFIX + kind)
    if rest == name:
        return None
    owner, dash, random_part = rest.partition("-")
    if not (dash and random_part and (owner.isdigit() or is_token(owner))):
        return None
    return owner


def remove_stale_files(
    directory: Path, kind: str = "", before_removing: Callable[[Path], None] | None = None
) -> list[Path]:
    """Remove `moonflower-[kind]<token>-*` entries of runs that are gone, and their lock files;
    directories are first handed to `before_removing` (a GnuPG home's agent is stopped)."""
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        owner = owner_of(entry.name, kind)
        if owner is None or not ours(entry) or owner_is_live(directory, owner):
            continue
        if entry.is_dir() and not entry.is_symlink():
            if before_removing is not None:
                before_removing(entry)
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    remove_dead_locks(directory)
    for entry in removed:
        log.warning("removed %s, left behind by a Moonflower process that was killed", entry)
    return removed
