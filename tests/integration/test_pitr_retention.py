"""Base backups over time: incremental chains, and the prune that keeps what a kept base
backup needs."""

import json
from pathlib import Path

from tests.support.pgserver import PgServer
from tests.support.pitr import (
    Streaming,
    archive_caught_up,
    base_descriptions,
    commit_rows,
    pitr_env,
    restored_rows,
)
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server


def test_prune_keeps_the_wal_the_kept_base_backup_needs(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    env = pitr_env(source, s3, bucket, tmp_path, BACKUP_COMPRESSION="zstd")
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        assert run_moonflower("basebackup", env=env).returncode == 0
        commit_rows(source, 0, 3)
        source.psql("SELECT pg_switch_wal()")
        assert run_moonflower("basebackup", env=env).returncode == 0
        commit_rows(source, 3, 3)
        source.psql("SELECT pg_switch_wal()")
        archive_caught_up(s3, bucket, source)
    finally:
        assert streaming.stop() == 0, streaming.text()
    bases_before = sorted({key.split("/")[2] for key in s3.keys(bucket) if "/base/" in key})
    assert len(bases_before) == 2
    segments_before = [int(k.split("/")[2][16:24], 16) for k in s3.keys(bucket) if "/wal/0" in k]

    pruned = run_moonflower("prune", env={**env, "S3_EXPIRES_IN": "1 second"})
    assert pruned.returncode == 0, pruned.stderr
    keys = s3.keys(bucket)
    assert sorted({key.split("/")[2] for key in keys if "/base/" in key}) == bases_before[1:]
    kept_start = json.loads(
        s3.client()
        .get_object(Bucket=bucket, Key=f"pitr/base/{bases_before[1]}/backup.json")["Body"]
        .read()
    )["start_lsn"]
    first_needed = int(kept_start.split("/")[1], 16) >> 24
    segments = [int(key.split("/")[2][16:24], 16) for key in keys if "/wal/0" in key]
    assert segments, "no WAL left at all"
    assert min(segments) >= first_needed
    assert min(segments_before) < first_needed  # there was older WAL, and it went

    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    assert restored_rows(restore_dir, source.password) == list(range(6))


def test_incremental_base_backups_chain_restore_and_prune(
    source: PgServer, s3: S3Server, tmp_path: Path, restore_dir: Path
) -> None:
    """PostgreSQL 18 with summarize_wal: the second base backup stores only what changed,
    restore-cluster combines the chain, and prune keeps what a kept backup builds on."""
    bucket = s3.new_bucket()
    env = pitr_env(
        source, s3, bucket, tmp_path, BASEBACKUP_INCREMENTAL="on", BACKUP_COMPRESSION="zstd"
    )
    not_ready = run_moonflower("check", env=env)
    assert not_ready.returncode == 1
    assert "summarize_wal is off" in " ".join(not_ready.stdout.split())
    source.psql("ALTER SYSTEM SET summarize_wal = on")
    source.psql("SELECT pg_reload_conf()")
    ready = run_moonflower("check", env=env)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    source.psql(
        "CREATE TABLE bulk AS SELECT g, md5(g::text) AS m FROM generate_series(1, 200000) g",
        "app",
    )
    full = run_moonflower("basebackup", env=env)
    assert full.returncode == 0, full.stderr
    commit_rows(source, 0, 3)
    incremental = run_moonflower("basebackup", env=env)
    assert incremental.returncode == 0, incremental.stderr
    assert "incremental (on " in incremental.stderr

    first, second = base_descriptions(s3, bucket)
    assert first["parent"] is None
    assert first["chain_length"] == 1
    assert second["parent"] == first["label"]
    assert second["chain_length"] == 2
    assert isinstance(second["size"], int)
    assert isinstance(first["size"], int)
    assert second["size"] < first["size"] / 2, (first["size"], second["size"])

    dry = run_moonflower("prune", "--dry-run", "--json", "--keep-last", "1", env=env)
    assert dry.returncode == 0, dry.stderr
    [bases] = [s for s in json.loads(dry.stdout)["series"] if s["kind"] == "base"]
    reasons = {entry["key"]: entry["reasons"] for entry in bases["backups"]}
    assert reasons[first["label"]] == [f"needed by {second['label']}"]

    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=env
    )
    assert restore.returncode == 0, restore.stderr
    assert "combining" in restore.stderr
    assert restored_rows(restore_dir, source.password) == [0, 1, 2]

    forced = run_moonflower("basebackup", "--full", env=env)
    assert forced.returncode == 0, forced.stderr
    assert base_descriptions(s3, bucket)[-1]["chain_length"] == 1
