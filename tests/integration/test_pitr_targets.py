"""Restores that reach their target or say they did not (issue 27, items 5 to 8): one
cluster and one timeline per archive, no partial segment passed over, targets checked
before anything is written, the incremental manifest checked, through PostgreSQL 18 and moto."""

import json
import os
import shutil
from pathlib import Path

import pendulum

from tests.support.pgserver import PgServer
from tests.support.pitr import (
    UNPRIVILEGED,
    Streaming,
    archive_caught_up,
    commit_rows,
    pitr_env,
    restored_rows,
    stream_rows,
)
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server


def fresh_directory(parent: Path, name: str) -> Path:
    directory = parent / name
    directory.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(directory, UNPRIVILEGED, "nogroup")
    return directory


def test_a_promoted_copy_streaming_into_the_same_path_does_not_hijack_latest(
    source: PgServer,
    s3: S3Server,
    tmp_path: Path,
    restore_dir: Path,
) -> None:
    bucket = s3.new_bucket()
    (tmp_path / "spool-1").mkdir()
    env = pitr_env(source, s3, bucket, tmp_path / "spool-1", BACKUP_COMPRESSION="zstd")
    assert run_moonflower("basebackup", env=env).returncode == 0
    stream_rows(env, tmp_path / "production.log", source, 0, s3, bucket)
    copy = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert copy.returncode == 0, copy.stderr
    # One writer at a time (the archive's lease): production stopped while the promoted copy
    # streamed into its path, as a mistaken second set-up would after production's end.
    with PgServer(password=source.password, data_dir=restore_dir) as promoted:
        promoted.psql("INSERT INTO ledger SELECT g, now() FROM generate_series(100, 129) g", "app")
        (tmp_path / "spool-2").mkdir()
        env_2 = pitr_env(promoted, s3, bucket, tmp_path / "spool-2", BACKUP_COMPRESSION="zstd")
        stream_rows(env_2, tmp_path / "copy.log", promoted, 200, s3, bucket)
    stream_rows(env, tmp_path / "production-2.log", source, 5, s3, bucket)
    assert any("/00000002.history" in key for key in s3.keys(bucket))

    final = fresh_directory(restore_dir.parent, "final")
    restore = run_moonflower("restore-cluster", "--to", str(final), "--latest", "--start", env=env)
    assert restore.returncode == 0, restore.stderr
    assert "the archive forks" in restore.stderr
    assert restored_rows(final, source.password) == list(range(10)), restore.stderr
    listing = json.loads(run_moonflower("list", "--json", env=env).stdout)
    (base,) = [entry for entry in listing if entry.get("kind") == "base"]
    assert base["forks"], base


def test_a_partial_upload_in_the_middle_of_the_chain_is_a_gap(
    source: PgServer,
    s3: S3Server,
    tmp_path: Path,
    restore_dir: Path,
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        assert run_moonflower("basebackup", env=env).returncode == 0
        for first in (0, 10, 20):
            commit_rows(source, first, 10)
            source.psql("SELECT pg_switch_wal()")
        archive_caught_up(s3, bucket, source)
    finally:
        assert streaming.stop() == 0, streaming.text()
    client = s3.client()
    complete = sorted(k for k in s3.keys(bucket) if "/wal/0" in k and ".partial." not in k)
    middle = complete[-2]
    name = middle.rsplit("/", 1)[1][:24]
    earlier = pendulum.now("UTC").subtract(minutes=1).format("YYYY-MM-DDTHH:mm:ss.SSS") + "Z"
    client.copy_object(
        Bucket=bucket,
        Key=f"pitr/wal/{name}.partial.{earlier}.zst",
        CopySource={"Bucket": bucket, "Key": middle},
    )
    client.delete_object(Bucket=bucket, Key=middle)

    verify = run_moonflower("verify", "--physical", env=env)
    assert verify.returncode == 1, verify.stderr
    assert name in verify.stderr
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 1, restore.stderr
    assert f"breaks at {name}" in restore.stderr
    assert not any(restore_dir.iterdir())


def test_targets_that_cannot_be_reached_are_refused_before_anything(
    source: PgServer,
    s3: S3Server,
    tmp_path: Path,
    restore_dir: Path,
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    assert run_moonflower("basebackup", env=env).returncode == 0
    stream_rows(env, tmp_path / "run.log", source, 0, s3, bucket)

    beyond = run_moonflower("restore-cluster", "--to", str(restore_dir), "--lsn", "FF/0", env=env)
    assert beyond.returncode == 1, beyond.stderr
    assert "out of reach" in beyond.stderr
    assert not any(restore_dir.iterdir())

    without_config = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--wal-fetch-command", env=env
    )
    assert without_config.returncode == 2, without_config.stderr
    lines = [line for line in without_config.stderr.splitlines() if line.startswith("moonflower:")]
    assert len(lines) == 1
    assert lines[0].startswith("moonflower: --config:")
    assert not any(restore_dir.iterdir())

    settings = restore_dir.parent / "partial.toml"
    settings.write_text(f'[s3]\nbucket = "{bucket}"\npath = "pitr"\n')  # no endpoint, no keys
    settings.chmod(0o644)
    incomplete = run_moonflower(
        "restore-cluster",
        "--config",
        str(settings),
        "--to",
        str(restore_dir),
        "--latest",
        "--wal-fetch-command",
        env=env,
    )
    assert incomplete.returncode == 2, incomplete.stderr
    assert "--config" in incomplete.stderr
    assert "cannot fetch WAL" in incomplete.stderr
    assert not any(restore_dir.iterdir())


def test_a_changed_incremental_manifest_is_not_built_on(
    source: PgServer,
    s3: S3Server,
    tmp_path: Path,
) -> None:
    source.psql("ALTER SYSTEM SET summarize_wal = on")
    source.psql("SELECT pg_reload_conf()")
    bucket = s3.new_bucket()
    env = {**pitr_env(source, s3, bucket, tmp_path), "BASEBACKUP_INCREMENTAL": "on"}
    assert run_moonflower("basebackup", env=env).returncode == 0
    for local in tmp_path.glob("**/base-*.backup_manifest"):
        local.unlink()  # a new host: only the uploaded copy is at hand
    client = s3.client()
    (key,) = [k for k in s3.keys(bucket) if "/backup_manifest" in k]
    stored = client.get_object(Bucket=bucket, Key=key)
    body = bytearray(stored["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=stored["Metadata"])
    commit_rows(source, 0, 2)
    second = run_moonflower("basebackup", env=env)
    assert second.returncode == 0, second.stderr
    assert "does not match the SHA-256" in second.stderr
    records = sorted(k for k in s3.keys(bucket) if k.endswith("/backup.json"))
    newest = json.loads(client.get_object(Bucket=bucket, Key=records[-1])["Body"].read())
    assert newest["chain_length"] == 1
    assert newest["manifest_sha256"]
