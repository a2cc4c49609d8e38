"""Where per-user state lives (the status file, the upload journal): BACKUP_STATE_DIR, or a
private directory of this user's in the system temp directory, which is shared with every
other user of the machine. Nothing there is trusted unless it is really ours."""

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Protocol

from moonflower.core.errors import MoonflowerError

PRIVATE_MODE = 0o700


class StateSettings(Protocol):
    """BACKUP_STATE_DIR, as the backup settings hold it, and the cluster they are of."""

    @property
    def state_dir(self) -> Path | None: ...

    @property
    def cluster(self) -> str | None: ...


def state_directory(backup: StateSettings) -> Path:
    """BACKUP_STATE_DIR, else a private directory of this user's; a cluster's state (its
    status file, journal, lease records) in a directory of its own inside it."""
    if backup.state_dir is not None:
        base = backup.state_dir
    else:
        base = private_directory(Path(tempfile.gettempdir()) / f"moonflower-user-{os.getuid()}")
    if backup.cluster is None:
        return base
    return private_directory(base / f"cluster-{backup.cluster}")


def private_directory(path: Path) -> Path:
    """`path` as a 0700 directory of this user's: created if missing, refused if it is a
    symlink, a file, another user's, or open to others (someone may have planted it)."""
    try:
        os.mkdir(path, PRIVATE_MODE)
    except FileExistsError:
        pass
    except OSError as error:
        raise MoonflowerError(
            f"cannot create {path}: {error.strerror}; set BACKUP_STATE_DIR"
        ) from None
    info = os.lstat(path)
    problem = None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory but a symlink or a file"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another user (uid {info.st_uid})"
    elif info.st_mode & 0o077:
        problem = f"is open to other users (mode {stat.S_IMODE(info.st_mode):o})"
    if problem is not None:
        raise MoonflowerError(
            f"the state directory {path} {problem}: someone else may have made it; remove it "
            "or set BACKUP_STATE_DIR"
        )
    return path


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Replaced whole, never seen half-written. One line: with `indent`, json encodes in
    Python instead of C."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".moonflower-state-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(content, separators=(",", ":")))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
