"""Each failure gives a clear message, a non-zero exit, no object and no leftover spool file."""

import os
import re
from pathlib import Path

from tests.conftest import NASTY_DATABASE, SECOND_DATABASE
from tests.support.pgserver import free_port
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import slow_dumps_running, use_slow_pg_dump


def assert_clean_failure(result, spool_dir: Path) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert list(spool_dir.iterdir()) == []


def test_wrong_password_fails_every_database_without_objects(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path
) -> None:
    backup_env["PG_PASSWORD"] = "definitely-not-it"

    result = run_moonflower(env=backup_env)

    assert_clean_failure(result, spool_dir)
    assert "password authentication failed" in result.stderr
    assert s3.keys(bucket) == []


def test_missing_database_fails_alone(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path
) -> None:
    backup_env["PG_DATABASES"] = f"no_such_db {SECOND_DATABASE}"

    result = run_moonflower(env=backup_env)

    assert_clean_failure(result, spool_dir)
    assert 'database "no_such_db" does not exist' in result.stderr
    assert "backup failed for 1 database(s): no_such_db" in result.stderr
    keys = s3.keys(bucket)
    assert len(keys) == 1
    assert keys[0].startswith(f"nightly/{SECOND_DATABASE}_")


def test_unreachable_s3_fails_the_run_with_its_own_error(
    backup_env: dict[str, str], spool_dir: Path
) -> None:
    """S3 is opened beside the first dump; when it cannot be reached the run fails with that
    error alone, as if S3 had been checked first."""
    backup_env["S3_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    backup_env["S3_MAX_ATTEMPTS"] = "2"

    result = run_moonflower(env=backup_env, timeout=90)

    assert_clean_failure(result, spool_dir)
    assert "backup run failed: checking the bucket: cannot reach the S3 endpoint" in result.stderr
    assert "backup failed for" not in result.stderr  # not blamed on a database


def test_a_dump_in_flight_is_stopped_when_s3_turns_out_unusable(
    backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env["S3_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    backup_env["S3_MAX_ATTEMPTS"] = "2"

    result = run_moonflower(env=backup_env, timeout=90)

    assert_clean_failure(result, spool_dir)
    assert "cannot reach the S3 endpoint" in result.stderr
    assert slow_dumps_running() == []


def test_missing_bucket_is_named(s3: S3Server, backup_env: dict[str, str], spool_dir: Path) -> None:
    backup_env["S3_BUCKET"] = "mf-test-no-such-bucket"

    result = run_moonflower(env=backup_env)

    assert_clean_failure(result, spool_dir)
    assert 'bucket "mf-test-no-such-bucket" does not exist' in result.stderr


def test_failed_gzip_stage_fails_the_backup(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    """A compressor that dies mid-stream: pg_dump gets SIGPIPE, the cause is reported."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in ("gzip", "pigz", "igzip"):  # whichever compressor Moonflower picks
        broken = fake_bin / name
        broken.write_text(
            f"#!/bin/sh\nhead -c 100 >/dev/null\necho '{name}: disk on fire' >&2\nexit 7\n"
        )
        broken.chmod(0o755)
    backup_env["PATH"] = f"{fake_bin}:{os.environ['PATH']}"
    backup_env["PG_DATABASES"] = NASTY_DATABASE

    result = run_moonflower(env=backup_env)

    assert_clean_failure(result, spool_dir)
    assert re.search(r"(i?gzip|pigz) failed \(exit status 7\): \1: disk on fire", result.stderr)
    assert s3.keys(bucket) == []


def test_tls_to_a_plain_http_endpoint_says_the_handshake_failed(
    s3: S3Server, backup_env: dict[str, str]
) -> None:
    endpoint = s3.endpoint.replace("http://", "https://")

    result = run_moonflower(env={**backup_env, "S3_ENDPOINT": endpoint, "S3_MAX_ATTEMPTS": "1"})

    assert result.returncode == 1
    assert "TLS handshake failed" in result.stderr
    assert "Traceback" not in result.stderr
