"""The test that matters most: back up with bin/moonflower, restore with stock tools, compare."""

import re
from pathlib import Path

from tests.conftest import NASTY_DATABASE, SECOND_DATABASE
from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.stock import load_gzip_dump

KEY_PATTERN = r"nightly/{db}_\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\.sql\.gz"


def test_backup_restores_with_stock_tools_identically(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    spool_dir: Path,
    tmp_path: Path,
) -> None:
    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    keys = s3.keys(bucket)
    assert len(keys) == 1
    assert re.fullmatch(KEY_PATTERN.format(db=re.escape(NASTY_DATABASE)), keys[0])
    assert list(spool_dir.iterdir()) == []

    downloaded = tmp_path / "backup.sql.gz"
    s3.client().download_file(bucket, keys[0], str(downloaded))
    load_gzip_dump(pg, downloaded, "restored_roundtrip")

    assert pg.dump_text("restored_roundtrip") == pg.dump_text(NASTY_DATABASE)
    assert pg.psql("SELECT count(*) FROM pg_largeobject_metadata", "restored_roundtrip") == "2"
    restored_bytes = pg.psql(
        "SELECT encode(payload, 'hex') FROM bytes WHERE id = 1", "restored_roundtrip"
    )
    assert restored_bytes == "".join(f"{value:02x}" for value in range(256))


def test_several_databases_and_the_summary(
    pg: PgServer, s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    backup_env["PG_DATABASES"] = f"  {NASTY_DATABASE}\t\n {SECOND_DATABASE}  "

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert len(s3.keys(bucket)) == 2
    assert s3.databases(bucket, "nightly") == sorted([NASTY_DATABASE, SECOND_DATABASE])
    assert "backup summary" in result.stdout
    assert SECOND_DATABASE in result.stdout


def test_empty_s3_path_puts_keys_at_the_bucket_root(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    backup_env["S3_PATH"] = "/"
    backup_env["PG_DATABASES"] = SECOND_DATABASE

    result = run_moonflower("backup", env=backup_env)

    assert result.returncode == 0, result.stderr
    [key] = s3.keys(bucket)
    assert key.startswith(f"{SECOND_DATABASE}_")


def test_upload_records_a_checksum_that_matches_the_object(
    s3: S3Server, bucket: str, backup_env: dict[str, str], tmp_path: Path
) -> None:
    import hashlib

    backup_env["PG_DATABASES"] = SECOND_DATABASE
    assert run_moonflower(env=backup_env).returncode == 0
    [key] = s3.keys(bucket)

    head = s3.client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert head.get("ChecksumSHA256"), "no S3 integrity checksum was sent"


def test_json_logs_are_one_object_per_line(
    backup_env: dict[str, str],
) -> None:
    import json

    backup_env["PG_DATABASES"] = SECOND_DATABASE
    backup_env["LOG_FORMAT"] = "json"

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert entries, "no log lines"
    assert {"time", "level", "message"} <= set(entries[0])
    assert any(entry.get("database") == SECOND_DATABASE for entry in entries)
