"""The status file is advisory: damaged, of another shape, or on a full file system, it is
logged (naming the file and BACKUP_STATE_DIR), set aside, and never stops a backup or
`status` (issue 28, item 5)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.runner import moonflower_command, run_moonflower
from tests.support.s3server import S3Server

STATE_NAME = f"moonflower-state-{os.getuid()}.json"


@pytest.mark.parametrize(
    "content",
    [
        {"databases": {"victimdb": "oops"}},
        {"databases": ["a"], "counters": {"runs": "many"}},
        {"last_run": 7, "wal_stream": "up", "jobs": {"basebackup": 1}},
    ],
)
def test_a_status_file_of_the_wrong_shape_never_stops_a_backup(
    s3: S3Server, backup_env: dict[str, str], content: dict[str, object]
) -> None:
    state = Path(backup_env["BACKUP_STATE_DIR"]) / STATE_NAME
    state.write_text(json.dumps(content))
    backup = run_moonflower("backup", env=backup_env)
    assert backup.returncode == 0, backup.stderr
    assert "BACKUP_STATE_DIR" in backup.stderr
    assert str(state) in backup.stderr
    assert state.with_name(STATE_NAME + ".damaged").exists()
    status = run_moonflower("status", env=backup_env)
    assert status.returncode == 0, status.stderr
    assert "Traceback" not in status.stderr
    health = run_moonflower("health", env=backup_env)
    assert health.returncode == 0, health.stdout


def can_mount_tmpfs() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs root to mount a small tmpfs")
def test_a_full_state_directory_never_stops_a_backup(
    s3: S3Server, backup_env: dict[str, str], tmp_path: Path
) -> None:
    full = tmp_path / "full-state"
    full.mkdir()
    env = {**backup_env, "BACKUP_STATE_DIR": str(full)}
    # A private mount namespace: a 64 KiB tmpfs over the state directory, filled up.
    fill = f"mount -t tmpfs -o size=64k,mode=0700 tmpfs {full} && cat /dev/zero > {full}/fill"
    script = f"{fill}; exec " + " ".join(moonflower_command("backup"))
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        env={**env, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "BACKUP_STATE_DIR: cannot write" in result.stderr
    assert "No space left on device" in result.stderr
    assert "unexpected error" not in result.stderr
    spool = Path(backup_env["BACKUP_SPOOL_DIR"])
    assert not [p for p in spool.iterdir() if not p.name.endswith(".lock")]
