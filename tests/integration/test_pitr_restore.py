"""restore-cluster from what a PITR set-up stored: to a moment, to the latest WAL, through
a failover, with Moonflower as the restore_command; and what it refuses."""

import base64
import json
import os
import shutil
from pathlib import Path

import pendulum
import pytest

from tests.support.faultproxy import FORWARD_HALF, FaultProxy, Request
from tests.support.gpgkeys import KeyPair
from tests.support.pgserver import PgServer
from tests.support.pitr import (
    LAST_SERVER_LOG,
    PUSH_SECONDS,
    UNPRIVILEGED,
    Streaming,
    archive_caught_up,
    archive_only_env,
    commit_rows,
    commit_times,
    pitr_env,
    restored_rows,
    server_user_can_run_moonflower,
    stream_rows,
)
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.waiting import eventually


def test_restore_to_a_moment_between_two_commits(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(
        source,
        s3,
        bucket,
        tmp_path,
        ENCRYPTION_PASSPHRASE="pitr passphrase 1",
        # A tar of some 40 MiB: uploaded in parts while it is made when the upload keeps up
        # (on a busy machine pg_basebackup may finish first; the file then goes up whole).
        BACKUP_COMPRESSION="none",
    )
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        commit_rows(source, 0, 3)
        backup = run_moonflower("basebackup", env=env)
        assert backup.returncode == 0, backup.stderr
        commit_rows(source, 3, 12)
        times = archive_caught_up(s3, bucket, source)
    finally:
        assert streaming.stop() == 0, streaming.text()
    listing = run_moonflower("list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    (base,) = [entry for entry in json.loads(listing.stdout) if entry.get("kind") == "base"]
    assert base["gap_at"] is None
    assert pendulum.parse(base["recoverable_to"]) >= times[-1][1]
    assert pendulum.parse(base["recoverable_from"]) <= times[3][1]
    last_kept = 8
    # Row n+1's insert starts at least 0.2 s after row n committed (pg_sleep in between):
    # 50 ms before it lies after that commit and before the next, however loaded the machine.
    target = times[last_kept + 1][1].subtract(microseconds=50_000)
    restore = run_moonflower(
        "restore-cluster",
        "--to",
        str(restore_dir),
        "--time",
        target.isoformat(),
        "--start",
        env=env,
    )
    assert restore.returncode == 0, restore.stderr
    assert "recovery stopping before commit" in restore.stderr
    restored = restored_rows(restore_dir, source.password)
    assert restored == list(range(last_kept + 1)), (restore.stderr, LAST_SERVER_LOG)


def test_latest_after_the_source_is_killed(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path, key_pair: KeyPair
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(
        source,
        s3,
        bucket,
        tmp_path,
        BACKUP_COMPRESSION="zstd",
        ENCRYPTION_PUBLIC_KEY=key_pair.public_base64,
    )
    backup = run_moonflower("basebackup", env=env)
    assert backup.returncode == 0, backup.stderr
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        commit_rows(source, 0, 25)
        times = commit_times(source)
        killed_at = pendulum.now("UTC")
        source.kill()
        # The supervisor noticed, and archived what it had received (its final round).
        assert eventually(lambda: "pg_receivewal stopped" in streaming.text(), 30)
    finally:
        streaming.stop()
    without_key = run_moonflower("verify", "--physical", env=env)
    assert without_key.returncode == 1
    assert "ENCRYPTION_PRIVATE_KEY: required to decrypt" in without_key.stderr
    env = {
        **env,
        "ENCRYPTION_PRIVATE_KEY": base64.b64encode(key_pair.secret_armored).decode(),
        "ENCRYPTION_PRIVATE_KEY_PASSPHRASE": key_pair.passphrase,
    }
    verified = run_moonflower("verify", "--physical", "--restore", env=env)
    assert verified.returncode == 0, verified.stderr
    assert "trial recovery of" in verified.stderr
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    rows = restored_rows(restore_dir, source.password)
    must_have = [n for n, moment in times if moment < killed_at.subtract(seconds=PUSH_SECONDS + 2)]
    assert must_have, "the test wrote too little before the kill"
    assert rows[: len(must_have)] == must_have, restore.stderr
    assert rows == [n for n, _ in times][: len(rows)]


def test_tampered_base_backup_is_refused_before_anything_starts(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path)
    assert run_moonflower("basebackup", env=env).returncode == 0
    client = s3.client()
    key = next(k for k in s3.keys(bucket) if "/base/" in k and "base.tar" in k)
    original = client.get_object(Bucket=bucket, Key=key)
    body = bytearray(original["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=original["Metadata"])
    verified = run_moonflower("verify", "--physical", env=env)
    assert verified.returncode == 1
    assert "does not match the SHA-256" in verified.stderr
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 1
    assert "does not match the SHA-256" in restore.stderr
    assert not any(restore_dir.iterdir())


def test_a_download_broken_mid_object_starts_over_and_restores(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    """The base backup streams from S3 into tar; when the stream breaks half-way, what was
    extracted goes and the object is downloaded whole, checked, and extracted again."""
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    commit_rows(source, 0, 3)
    assert run_moonflower("basebackup", env=env).returncode == 0
    broken: list[str] = []

    def break_the_first_download(request: Request) -> object:
        if request.method == "GET" and "/base.tar" in request.path and not broken:
            broken.append(request.path)
            return FORWARD_HALF
        return None

    with FaultProxy(s3.endpoint, [break_the_first_download]) as proxy:
        restore = run_moonflower(
            "restore-cluster",
            "--to",
            str(restore_dir),
            "--latest",
            "--start",
            env={**env, "S3_ENDPOINT": proxy.endpoint},
        )

    assert restore.returncode == 0, restore.stderr
    assert broken, "the base backup was never downloaded through the proxy"
    assert "downloading it whole instead" in restore.stderr
    assert restored_rows(restore_dir, source.password) == [0, 1, 2]


def test_latest_follows_a_failover_to_a_new_timeline(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    """The source's WAL, then a promoted copy of it (timeline 2) streaming into the same
    archive, as after a failover: a restore from the first base backup reaches the rows
    written on the new timeline."""
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path / "spool-1", BACKUP_COMPRESSION="zstd")
    (tmp_path / "spool-1").mkdir()
    assert run_moonflower("basebackup", env=env).returncode == 0
    streaming = Streaming(env, tmp_path / "run-1.log")
    try:
        streaming.wait_started()
        commit_rows(source, 0, 5)
        source.kill()
        assert eventually(lambda: "pg_receivewal stopped" in streaming.text(), 30)
    finally:
        streaming.stop()

    promoted_dir = restore_dir
    failover = run_moonflower(
        "restore-cluster", "--to", str(promoted_dir), "--latest", "--start", env=env
    )
    assert failover.returncode == 0, failover.stderr
    with PgServer(password=source.password, data_dir=promoted_dir) as promoted:
        assert promoted.psql("SELECT timeline_id FROM pg_control_checkpoint()") == "2"
        (tmp_path / "spool-2").mkdir()
        env_2 = {
            **pitr_env(promoted, s3, bucket, tmp_path / "spool-2", BACKUP_COMPRESSION="zstd"),
        }
        stream_rows(env_2, tmp_path / "run-2.log", promoted, 5, s3, bucket)
    assert any(key.endswith("/00000002.history.zst") for key in s3.keys(bucket))

    final_dir = restore_dir.parent / "final"
    final_dir.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(final_dir, UNPRIVILEGED, "nogroup")
    restore = run_moonflower(
        "restore-cluster", "--to", str(final_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    assert restored_rows(final_dir, source.password) == list(range(10))


def test_restore_with_moonflower_as_the_restore_command(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    if not server_user_can_run_moonflower():
        pytest.skip("the server's user cannot run this checkout's bin/moonflower")
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    assert run_moonflower("basebackup", env=env).returncode == 0
    stream_rows(env, tmp_path / "run.log", source, 0, s3, bucket)
    # The settings in a file the server's user can read: its environment has none of them.
    config = restore_dir.parent / "moonflower.toml"
    s3_env = s3.moonflower_env(bucket, "pitr")
    config.write_text(
        "[s3]\n"
        f'endpoint = "{s3_env["S3_ENDPOINT"]}"\n'
        f'region = "{s3_env["S3_REGION"]}"\n'
        f'bucket = "{bucket}"\n'
        'path = "pitr"\n'
        f'access_key = "{s3_env["S3_ACCESS_KEY"]}"\n'
        f'secret_key = "{s3_env["S3_SECRET_KEY"]}"\n'
        "[backup]\n"
        'compression = "zstd"\n'
    )
    config.chmod(0o644)
    restore = run_moonflower(
        "restore-cluster",
        "--config",
        str(config),
        "--to",
        str(restore_dir),
        "--latest",
        "--wal-fetch-command",
        "--start",
        env={"PATH": os.environ["PATH"]},
    )
    assert restore.returncode == 0, restore.stderr
    settings = (restore_dir / "postgresql.auto.conf").read_text()
    assert f"--config {config} wal-fetch %f %p'" in settings
    assert not list((restore_dir / "pg_wal").glob("0000000100000000000000[3-9]"))
    assert restored_rows(restore_dir, source.password) == list(range(5))


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--time", "yesterday", '--time: "yesterday" is not a date and time'),
        ("--time", "2026-02-30 10:00:00", "--time: "),
        ("--lsn", "12", '--lsn: "12" is not a WAL position'),
    ],
)
def test_a_bad_target_is_refused_before_anything(
    s3: S3Server, tmp_path: Path, flag: str, value: str, message: str
) -> None:
    env = archive_only_env(s3, s3.new_bucket(), tmp_path)
    target = tmp_path / "never"
    result = run_moonflower("restore-cluster", "--to", str(target), flag, value, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"moonflower: {message}")
    assert not target.exists()
