"""A pg_dump that never finishes, to interrupt backups at a known point."""

import os
import signal
import subprocess
import time
from pathlib import Path

MARKER = "moonflower-test-slow-dump"
WAIT_SECONDS = 60


def fake_pg_dump(directory: Path, body: str) -> Path:
    """A `pg_dump` script that claims a version newer than any server and then runs `body`."""
    script = directory / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi\n' + body
    )
    script.chmod(0o755)
    return script


def use_slow_pg_dump(env: dict[str, str], scratch: Path) -> None:
    """Point PG_DUMP_PATH at a pg_dump that writes a little, then hangs.

    Its path contains MARKER, so its process can be found in /proc.
    """
    directory = scratch / MARKER
    directory.mkdir()
    script = fake_pg_dump(directory, "echo '-- partial dump'\nwhile :; do sleep 0.1; done\n")
    env["PG_DUMP_PATH"] = str(script)


def processes_with(marker: str = MARKER) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(pid)
    return found


def wait_until_dumping(spool_dir: Path) -> bool:
    """True once the spool file exists and the slow pg_dump runs (bounded wait)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if list(spool_dir.iterdir()) and processes_with():
            return True
        time.sleep(0.05)
    return False


def interrupt_while_dumping(
    command: list[str], env: dict[str, str], spool_dir: Path, signum: int = signal.SIGTERM
) -> subprocess.CompletedProcess[str]:
    """Start `command`, wait until the slow dump runs, send `signum`, collect the outcome."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait_until_dumping(spool_dir):
        process.kill()
        process.communicate(timeout=WAIT_SECONDS)
        raise AssertionError("the slow dump never started")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
