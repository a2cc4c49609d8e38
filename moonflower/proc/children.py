"""Which child processes belong to a part of Moonflower that will wait for them.

In a container Moonflower is often PID 1, and orphans of the processes it started are handed
to it: they must be reaped, or they stay zombies. A reaper must never take the exit status
of a child that a pipeline still waits for (pg_receivewal's, for one: its supervisor then
sees "No child processes" and the stream dies). Every start goes through `spawning`, which
records the child, and the reaper collects only the children nobody recorded.
"""

import contextlib
import os
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_tracked: set[int] = set()
_starting = 0
"""Starts under way whose process id is not known yet: the reaper waits for them."""


@contextlib.contextmanager
def spawning() -> Iterator[None]:
    """Around the start of a child, until its pid is tracked (or it was waited for)."""
    global _starting
    with _lock:
        _starting += 1
    try:
        yield
    finally:
        with _lock:
            _starting -= 1


def track(pid: int) -> None:
    with _lock:
        _tracked.add(pid)


def untrack(pids: list[int]) -> None:
    with _lock:
        _tracked.difference_update(pids)


def reap_orphans(as_init: bool | None = None) -> None:
    """Collect exited orphans handed to us as PID 1; leave every child someone waits for.
    A process that is not PID 1 gets no orphans: it does nothing (`as_init` overrides the
    check, for tests)."""
    if not (os.getpid() == 1 if as_init is None else as_init):
        return
    with _lock:
        if _starting:
            return
        for pid in exited_children():
            if pid not in _tracked:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)


def exited_children() -> list[int]:
    """This process's children that have exited and wait to be collected (zombies)."""
    me, found = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[0] == b"Z" and int(fields[1]) == me:
            found.append(int(entry.name))
    return found
