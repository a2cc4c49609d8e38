"""Uploading while dumping: real multipart uploads that complete, abort, retry, fall back."""

import re
from pathlib import Path

from tests.support.faultproxy import FaultProxy, Request, s3_error
from tests.support.names import unique_name
from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import fake_pg_dump


def uncompressed(backup_env: dict[str, str], database: str, pg_dump: str = "") -> dict[str, str]:
    env = {**backup_env, "PG_DATABASES": database, "BACKUP_COMPRESSION": "none"}
    if pg_dump:
        env["PG_DUMP_PATH"] = pg_dump
    return env


def big_dump_through(
    proxy: FaultProxy, backup_env: dict[str, str], database: str, pg_dump: str
) -> dict[str, str]:
    """The big database, uncompressed and slowed, uploaded through the proxy."""
    return {**uncompressed(backup_env, database, pg_dump), "S3_ENDPOINT": proxy.endpoint}


def test_a_big_dump_is_uploaded_while_it_is_written_and_restores(
    pg: PgServer,
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    big_database: str,
    pausing_pg_dump: str,
) -> None:
    env = uncompressed(backup_env, big_database, pausing_pg_dump)

    result = run_moonflower(env=env)
    verified = run_moonflower("verify", env=env)
    copy = unique_name("streamed_copy")
    restored = run_moonflower("restore", big_database, "--into", copy, env=env)

    assert result.returncode == 0, result.stderr
    assert "uploading while dumping: multipart upload started" in result.stderr
    [key] = s3.keys(bucket)
    head = s3.client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["Metadata"]["part-size"] == str(16 * 1024 * 1024)
    assert head.get("ChecksumSHA256")
    assert s3.no_uploads_left(bucket)
    assert verified.returncode == 0, verified.stderr
    assert "composite SHA-256" in verified.stderr
    assert restored.returncode == 0, restored.stderr
    assert pg.dump_text(copy) == pg.dump_text(big_database)


def test_a_dump_failing_after_parts_were_sent_leaves_nothing(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir: Path, tmp_path: Path
) -> None:
    failing = fake_pg_dump(
        tmp_path,
        "head -c 40000000 /dev/urandom\nsleep 1\necho 'pg_dump: error: lost it' >&2\nexit 1\n",
    )
    env = {**uncompressed(backup_env, "second"), "PG_DUMP_PATH": str(failing)}

    result = run_moonflower(env=env)

    assert result.returncode == 1
    assert "pg_dump: error: lost it" in result.stderr
    assert "multipart upload started" in result.stderr
    assert "aborted the multipart upload" in result.stderr
    assert s3.keys(bucket) == []
    assert s3.no_uploads_left(bucket)
    assert list(spool_dir.iterdir()) == []


def test_a_failing_part_is_retried(
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    big_database: str,
    proxy: FaultProxy,
    pausing_pg_dump: str,
) -> None:
    failures = {"left": 2}

    def flaky_parts(request: Request):
        if request.method == "PUT" and "partNumber=1&" in request.path + "&" and failures["left"]:
            failures["left"] -= 1
            return s3_error(503, "SlowDown", "please slow down")
        return None

    proxy.rules.append(flaky_parts)
    env = big_dump_through(proxy, backup_env, big_database, pausing_pg_dump)

    result = run_moonflower(env=env)

    assert result.returncode == 0, result.stderr
    assert failures["left"] == 0
    assert len(s3.keys(bucket)) == 1
    assert s3.no_uploads_left(bucket)


def test_when_early_upload_is_refused_the_finished_file_is_uploaded(
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    big_database: str,
    proxy: FaultProxy,
    pausing_pg_dump: str,
) -> None:
    def refuse_parts_while_dumping(request: Request):
        if (
            request.method == "PUT"
            and "partNumber=" in request.path
            and "uploadId=" in request.path
        ):
            return s3_error(400, "InvalidRequest", "no parts today")
        return None

    proxy.rules.append(refuse_parts_while_dumping)
    env = big_dump_through(proxy, backup_env, big_database, pausing_pg_dump)

    result = run_moonflower(env=env)

    assert result.returncode == 0, result.stderr
    assert "will upload when done" in result.stderr
    [key] = s3.keys(bucket)
    head = s3.client().head_object(Bucket=bucket, Key=key)
    assert "sha256" in head["Metadata"]
    assert s3.no_uploads_left(bucket)


def signed_headers(request: Request) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in request.headers.items()}
    authorization = lowered["authorization"]
    listed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    return {name: lowered.get(name, "") for name in listed}


def test_bodies_are_protected_by_their_signed_checksum_instead_of_hashed_twice(
    backup_env: dict[str, str], big_database: str, proxy: FaultProxy, pausing_pg_dump: str
) -> None:
    small = {**backup_env, "S3_ENDPOINT": proxy.endpoint}
    big = big_dump_through(proxy, backup_env, big_database, pausing_pg_dump)

    assert run_moonflower(env=small).returncode == 0
    assert run_moonflower(env=big).returncode == 0

    uploads = [r for r in proxy.seen if r.method == "PUT" and "/" in r.path.strip("/")]
    assert any("partNumber=" in r.path for r in uploads)
    assert any("partNumber=" not in r.path for r in uploads)
    for request in uploads:
        signed = signed_headers(request)
        assert signed["x-amz-content-sha256"].startswith(("UNSIGNED-PAYLOAD", "STREAMING-"))
        assert any(name.startswith("x-amz-checksum-") or name == "x-amz-trailer" for name in signed)


def test_without_s3_checksums_the_signature_still_covers_the_body(
    backup_env: dict[str, str], proxy: FaultProxy
) -> None:
    env = {**backup_env, "S3_ENDPOINT": proxy.endpoint, "S3_CHECKSUM": "when_required"}

    assert run_moonflower(env=env).returncode == 0

    uploads = [r for r in proxy.seen if r.method == "PUT" and "/" in r.path.strip("/")]
    assert uploads
    for request in uploads:
        assert re.fullmatch("[0-9a-f]{64}", signed_headers(request)["x-amz-content-sha256"])
