"""Which leftovers belong to a live Moonflower, decided by locks, not by process ids.

Every process holds an exclusive `flock` on a lock file of its own (`moonflower-<token>.lock`)
in each directory where it leaves files, and puts the lock's token in those files' names. The
kernel drops the lock when the process dies, however it dies, so a later start can tell a
killed run's files from a live one's even across PID namespaces (two containers sharing a
volume, or a container whose entrypoint is PID 1 in every life).
"""

import atexit
import contextlib
import errno
import fcntl
import os
import secrets
import threading
from pathlib import Path

from moonflower.core.liveness import is_alive

OWNED_PREFIX = "moonflower-"
TOKEN_MARK = "run"
LOCK_SUFFIX = ".lock"
_TOKEN_HEX_DIGITS = 12


def lock_name(token: str) -> str:
    return f"{OWNED_PREFIX}{token}{LOCK_SUFFIX}"


def is_token(text: str) -> bool:
    digits = text.removeprefix(TOKEN_MARK)
    return (
        digits != text
        and len(digits) == _TOKEN_HEX_DIGITS
        and all(c in "0123456789abcdef" for c in digits)
    )


class RunLease:
    """This process's claim on the files it names with `token`."""

    def __init__(self) -> None:
        self.token = TOKEN_MARK + secrets.token_hex(_TOKEN_HEX_DIGITS // 2)
        self._held: dict[str, tuple[int, Path]] = {}
        self._mutex = threading.Lock()

    def claim(self, directory: Path) -> None:
        """Hold this run's lock in `directory` before any file of the run is put there."""
        with self._mutex:
            key = os.path.abspath(directory)
            held = self._held.get(key)
            if held is not None and _still_in_place(*held):
                return
            self._held[key] = _take_lock(directory, self.token)
            if held is not None:  # the old lock file was removed (a temp cleaner): replace it
                os.close(held[0])

    def release(self) -> None:
        """Give up every lock (at exit): the lock files go, their directories stay."""
        with self._mutex:
            for descriptor, path in self._held.values():
                path.unlink(missing_ok=True)
                os.close(descriptor)
            self._held.clear()


def _take_lock(directory: Path, token: str) -> tuple[int, Path]:
    # Locked under a name no cleaner looks at, then renamed into place: a cleaner can never
    # find the lock file unlocked while this run is alive.
    final = directory / lock_name(token)
    staging = directory / f".{lock_name(token)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(staging, flags, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.rename(staging, final)
    except OSError:
        os.close(descriptor)
        staging.unlink(missing_ok=True)
        raise
    return descriptor, final


def _still_in_place(descriptor: int, path: Path) -> bool:
    try:
        on_disk = path.lstat()
    except OSError:
        return False
    held = os.fstat(descriptor)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


lease = RunLease()
"""The process-wide lease: one token for every file this process leaves anywhere."""
atexit.register(lease.release)


def owner_is_live(directory: Path, owner: str) -> bool:
    """Is the run that named a file in `directory` with `owner` still running? `owner` is a
    lease token, or a process id in names made by Moonflower before locks (decided by pid)."""
    if owner == lease.token:
        return True
    if owner.isdigit():
        return int(owner) == os.getpid() or is_alive(int(owner))
    try:
        descriptor = os.open(directory / lock_name(owner), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # a run takes its lock before it makes any file: no lock, no run
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(descriptor)
    return False


def ours(entry: Path) -> bool:
    """Made by this user: another user's leftovers are theirs to clean."""
    try:
        return entry.lstat().st_uid == os.getuid()
    except OSError:
        return False


def remove_dead_locks(directory: Path) -> None:
    """Remove this user's lock files in `directory` whose run is gone. Call it after that
    run's files are gone: without its lock file, they would be taken for a dead run's."""
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            name = entry.name
            if not (name.startswith(OWNED_PREFIX) and name.endswith(LOCK_SUFFIX)):
                continue
            token = name.removeprefix(OWNED_PREFIX).removesuffix(LOCK_SUFFIX)
            if not is_token(token) or owner_is_live(directory, token):
                continue
            if ours(entry):
                entry.unlink(missing_ok=True)
