"""Files on a machine Moonflower shares: it must work where the system temp directory is
read-only, as long as BACKUP_SPOOL_DIR and BACKUP_STATE_DIR point somewhere writable."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pgserver import PgServer
from tests.support.runner import (
    RUN_TIMEOUT_SECONDS,
    clean_environment,
    moonflower_command,
    run_moonflower,
)
from tests.support.s3server import S3Server

READ_ONLY_TEMP = (
    "mount --bind -o ro /tmp /tmp && "
    "if [ -d /var/tmp ]; then mount --bind -o ro /var/tmp /var/tmp; fi && "
    'cd /tmp && exec "$@"'
)


def can_make_temp_read_only() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", READ_ONLY_TEMP, "sh", "true"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


needs_mount_namespace = pytest.mark.skipif(
    not can_make_temp_read_only(), reason="needs root and unshare to make /tmp read-only"
)


def in_read_only_temp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """bin/moonflower in a mount namespace of its own where /tmp and /var/tmp are read-only."""
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", READ_ONLY_TEMP, "sh", *moonflower_command(*args)],
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture
def writable_elsewhere() -> Iterator[Path]:
    """A writable directory outside /tmp and /var/tmp (shared memory)."""
    directory = Path(tempfile.mkdtemp(prefix="mf-not-tmp-", dir="/dev/shm"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@needs_mount_namespace
def test_a_read_only_temp_directory_is_fine_with_spool_and_state_set(
    s3: S3Server, bucket: str, backup_env: dict[str, str], writable_elsewhere: Path
) -> None:
    spool = writable_elsewhere / "spool"
    state = writable_elsewhere / "state"
    spool.mkdir()
    state.mkdir()
    env = {
        **backup_env,
        "PG_DATABASES": "second",
        "BACKUP_SPOOL_DIR": str(spool),
        "BACKUP_STATE_DIR": str(state),
        "ENCRYPTION_PASSPHRASE": "read-only tmp passphrase",
    }

    backup = in_read_only_temp(env, "backup")
    verify = in_read_only_temp(env, "verify")
    health = in_read_only_temp(env, "health")

    assert backup.returncode == 0, backup.stderr
    assert verify.returncode == 0, verify.stderr
    assert health.returncode == 0, health.stdout
    assert len(s3.keys(bucket)) == 1
    assert sorted(path.name for path in spool.iterdir()) == []


@pytest.mark.parametrize("planted", ["symlink", "open to others"])
def test_a_planted_state_directory_is_refused_not_followed(
    s3: S3Server, bucket: str, backup_env: dict[str, str], tmp_path: Path, planted: str
) -> None:
    """Without BACKUP_STATE_DIR the state lives in <temp>/moonflower-user-<uid>: another user may
    have made that name first, as a symlink to somewhere of theirs or as a shared directory."""
    temp = tmp_path / "shared-temp"
    temp.mkdir()
    elsewhere = tmp_path / "attackers-directory"
    elsewhere.mkdir()
    name = temp / f"moonflower-user-{os.getuid()}"
    if planted == "symlink":
        name.symlink_to(elsewhere)
    else:
        name.mkdir()
        name.chmod(0o777)
    env = {**backup_env, "PG_DATABASES": "second", "TMPDIR": str(temp)}
    del env["BACKUP_STATE_DIR"]

    result = run_moonflower(env=env)

    assert result.returncode == 1
    assert f"the state directory {name}" in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert s3.keys(bucket) == []


def test_without_a_state_directory_setting_a_private_one_is_made(
    backup_env: dict[str, str], tmp_path: Path
) -> None:
    temp = tmp_path / "shared-temp"
    temp.mkdir()
    env = {**backup_env, "PG_DATABASES": "second", "TMPDIR": str(temp)}
    del env["BACKUP_STATE_DIR"]
    del env["BACKUP_SPOOL_DIR"]  # the spool is the temp directory too, as by default

    result = run_moonflower(env=env)
    again = run_moonflower(env=env)  # its cleanup of killed runs' leftovers must spare it
    health = run_moonflower("health", env=env)

    assert result.returncode == 0, result.stderr
    assert again.returncode == 0, again.stderr
    assert "removed" not in again.stderr
    private = temp / f"moonflower-user-{os.getuid()}"
    assert private.is_dir()
    assert private.stat().st_mode & 0o777 == 0o700
    assert health.returncode == 0, health.stdout


@needs_mount_namespace
def test_point_in_time_recovery_needs_no_temp_directory(
    source: PgServer, s3: S3Server, writable_elsewhere: Path
) -> None:
    """Issue 28, item 11: basebackup, verify --physical --restore and restore-cluster --start
    with /tmp read-only: the cluster copy and the server's socket live in the spool or in
    the target directory."""
    writable_elsewhere.chmod(0o755)
    spool, state, target = (writable_elsewhere / name for name in ("spool", "state", "target"))
    for directory in (spool, state, target):
        directory.mkdir(mode=0o700)
    shutil.chown(target, "nobody", "nogroup")
    bucket = s3.new_bucket()
    env = {
        **source.moonflower_env("app"),
        **s3.moonflower_env(bucket, "pitr"),
        "BACKUP_SPOOL_DIR": str(spool),
        "BACKUP_STATE_DIR": str(state),
        "BACKUP_COMPRESSION": "zstd",
    }
    source.psql("INSERT INTO ledger VALUES (1, now()), (2, now())", "app")

    backup = in_read_only_temp(env, "basebackup")
    assert backup.returncode == 0, backup.stderr
    verify = in_read_only_temp(env, "verify", "--physical", "--restore")
    assert verify.returncode == 0, verify.stderr
    restore = in_read_only_temp(env, "restore-cluster", "--to", str(target), "--latest", "--start")
    assert restore.returncode == 0, restore.stderr
    assert (target / "PG_VERSION").exists()
    assert not (target / "moonflower-recovery.log").exists()
    assert [p.name for p in spool.iterdir() if not p.name.startswith("wal-stream")] == []
