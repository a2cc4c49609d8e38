"""SIGTERM in the middle of a dump: exit 143, no object, no spool file, no child left."""

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.runner import clean_environment, moonflower_command
from tests.support.s3server import S3Server

WAIT_SECONDS = 30
MARKER = "moonflower-test-slow-dump"


def slow_pg_dump(directory: Path) -> Path:
    """A pg_dump that reports a new version, writes a little, then hangs."""
    script = directory / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi\n'
        "echo '-- partial dump'\n"
        "while :; do sleep 0.1; done\n"
    )
    script.chmod(0o755)
    return script


def processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(pid)
    return found


def test_sigterm_during_a_dump_cleans_up(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    fake_dir = tmp_path / MARKER
    fake_dir.mkdir()
    backup_env["PG_DUMP_PATH"] = str(slow_pg_dump(fake_dir))
    backup_env["PG_DATABASES"] = "second"
    process = subprocess.Popen(
        moonflower_command(),
        env=clean_environment(backup_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + WAIT_SECONDS

    def dumping() -> bool:
        return bool(list(spool_dir.iterdir())) and bool(processes_with(MARKER))

    while not dumping() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dumping(), "the slow dump never started"

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=WAIT_SECONDS)

    assert process.returncode == 143, stderr
    assert "terminated" in stderr
    assert list(spool_dir.iterdir()) == []
    assert s3.keys(bucket) == []
    assert processes_with(MARKER) == []
