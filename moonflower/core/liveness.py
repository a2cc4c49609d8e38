"""Is a process that left something behind still running? (Files and uploads are named or
journaled with the pid of the Moonflower process that made them.)"""

from pathlib import Path


def is_alive(pid: int) -> bool:
    """True when `pid` runs and is a Moonflower (guards against reused pids)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"moonflower" in cmdline
