"""Reading /proc: which processes run, and their command lines and environments."""

import os
from pathlib import Path


def read_proc(pid: str | int, name: str) -> bytes:
    """/proc/<pid>/<name>, or b"" when the process is gone or not ours to read."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def all_pids() -> list[str]:
    return [entry for entry in os.listdir("/proc") if entry.isdigit()]


def processes_with(marker: str) -> list[str]:
    """The pids whose command line contains `marker`."""
    return [pid for pid in all_pids() if marker.encode() in read_proc(pid, "cmdline")]
