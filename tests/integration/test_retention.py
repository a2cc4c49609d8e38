"""Object Lock and expiry that really deletes, against a moto S3 server over HTTP."""

from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server

OLD = "2020-01-01T00:00:00.000Z"
OLDER = "2019-06-01T00:00:00.000Z"


def put(s3: S3Server, bucket: str, key: str, **extra: object) -> None:
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"\x1f\x8b old backup", **extra)


def all_versions(s3: S3Server, bucket: str, key: str) -> list[str]:
    listing = s3.client().list_object_versions(Bucket=bucket, Prefix=key)
    entries = listing.get("Versions", []) + listing.get("DeleteMarkers", [])
    return [entry["VersionId"] for entry in entries if entry["Key"] == key]


def test_governance_lock_is_set_in_the_upload_and_enforced(
    s3: S3Server, backup_env: dict[str, str]
) -> None:
    bucket = s3.new_bucket(object_lock=True)
    backup_env.update(S3_BUCKET=bucket, S3_GOVERNANCE="30 days", PG_DATABASES="second")

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "locked in GOVERNANCE mode until" in result.stderr
    [key] = s3.keys(bucket)
    head = s3.client().head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs(head["ObjectLockRetainUntilDate"] - expected) < timedelta(minutes=5)
    [version] = all_versions(s3, bucket, key)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3.client().delete_object(Bucket=bucket, Key=key, VersionId=version)


def test_governance_on_a_bucket_without_object_lock_fails_clearly(
    s3: S3Server, bucket: str, backup_env: dict[str, str], spool_dir
) -> None:
    backup_env.update(S3_GOVERNANCE="30 days", PG_DATABASES="second")

    result = run_moonflower(env=backup_env)

    assert result.returncode == 1
    assert "does not have Object Lock enabled" in result.stderr
    assert "Traceback" not in result.stderr
    assert s3.keys(bucket) == []
    assert list(spool_dir.iterdir()) == []


def test_a_run_deletes_expired_backups_but_keeps_the_newest_and_unrelated_keys(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    old = f"nightly/second_{OLD}.sql.gz"
    unrelated = [
        "nightly/notes.txt",
        f"nightly/sub/second_{OLD}.sql.gz",
        f"other/second_{OLD}.sql.gz",
        f"nightly/second_{OLD}.sql.gz.bak",
        f"second_{OLD}.sql.gz",
    ]
    for key in [old, *unrelated]:
        put(s3, bucket, key)
    backup_env.update(S3_EXPIRES_IN="30 days", PG_DATABASES="second")

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    keys = set(s3.keys(bucket))
    assert old not in keys
    assert set(unrelated) <= keys
    [new] = [key for key in keys if key.startswith("nightly/second_") and key.endswith(".gz")]
    head = s3.client().head_object(Bucket=bucket, Key=new)
    assert head["Metadata"]["expires-at"]
    assert head.get("Expires") or head.get("ExpiresString")


def test_prune_keeps_the_newest_of_each_database_however_old(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    for key in (
        f"nightly/ghost_{OLDER}.sql.gz",
        f"nightly/ghost_{OLD}.sql.gz.gpg",
        f"nightly/legacy_{OLDER}.sql.gpg",
        f"nightly/legacy_{OLD}.sql.gpg",
    ):
        put(s3, bucket, key)
    backup_env["S3_EXPIRES_IN"] = "1 year"

    dry = run_moonflower("prune", "--dry-run", env=backup_env)
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stdout
    assert len(s3.keys(bucket)) == 4

    result = run_moonflower("prune", env=backup_env)

    assert result.returncode == 0, result.stderr
    assert sorted(s3.keys(bucket)) == [
        f"nightly/ghost_{OLD}.sql.gz.gpg",
        f"nightly/legacy_{OLD}.sql.gpg",
    ]


def test_prune_removes_every_version_in_a_versioned_bucket(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    s3.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = f"nightly/ghost_{OLDER}.sql.gz"
    put(s3, bucket, old)
    put(s3, bucket, old)  # overwritten: two versions of one backup
    put(s3, bucket, f"nightly/ghost_{OLD}.sql.gz")
    assert len(all_versions(s3, bucket, old)) == 2
    backup_env["S3_EXPIRES_IN"] = "1 day"

    result = run_moonflower("prune", env=backup_env)

    assert result.returncode == 0, result.stderr
    assert all_versions(s3, bucket, old) == []
    assert s3.keys(bucket) == [f"nightly/ghost_{OLD}.sql.gz"]


def test_prune_skips_versions_still_locked(s3: S3Server, backup_env: dict[str, str]) -> None:
    bucket = s3.new_bucket(object_lock=True)
    locked = f"nightly/ghost_{OLDER}.sql.gz"
    put(
        s3,
        bucket,
        locked,
        ObjectLockMode="GOVERNANCE",
        ChecksumAlgorithm="SHA256",
        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=1),
    )
    put(s3, bucket, f"nightly/ghost_{OLD}.sql.gz")
    backup_env.update(S3_BUCKET=bucket, S3_EXPIRES_IN="1 day")

    result = run_moonflower("prune", env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "is locked until" in result.stderr
    assert len(all_versions(s3, bucket, locked)) == 1


def test_prune_needs_an_expiry(backup_env: dict[str, str]) -> None:
    result = run_moonflower("prune", env=backup_env)

    assert result.returncode == 2
    assert "S3_EXPIRES_IN: required by `moonflower prune`" in result.stderr


def test_batch_delete_refused_falls_back_to_single_deletes(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    from tests.support.faultproxy import FaultProxy, s3_error

    def refuse_batch_delete(request):
        if request.method == "POST" and "delete" in request.path.split("?", 1)[-1]:
            return s3_error(400, "MissingContentMD5", "Content-MD5 required")
        return None

    put(s3, bucket, f"nightly/ghost_{OLDER}.sql.gz")
    put(s3, bucket, f"nightly/ghost_{OLD}.sql.gz")
    with FaultProxy(s3.endpoint, [refuse_batch_delete]) as proxy:
        backup_env.update(S3_ENDPOINT=proxy.endpoint, S3_EXPIRES_IN="1 day")
        result = run_moonflower("prune", env=backup_env)

    assert result.returncode == 0, result.stderr
    assert "deleting one version at a time" in result.stderr
    assert any(r.method == "POST" for r in proxy.seen)
    assert any(r.method == "DELETE" for r in proxy.seen)
    assert s3.keys(bucket) == [f"nightly/ghost_{OLD}.sql.gz"]


def test_a_later_run_deletes_a_backup_that_expired_seconds_ago(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    import time

    from moonflower.catalog.keys import parse_key

    backup_env.update(S3_EXPIRES_IN="2 seconds", PG_DATABASES="second")
    assert run_moonflower(env=backup_env).returncode == 0
    [first] = s3.keys(bucket)
    parsed = parse_key(first, "nightly")
    assert parsed is not None
    expiry = parsed.created.add(seconds=2).timestamp()
    time.sleep(max(0.0, expiry - time.time()) + 0.1)  # until it has expired, no longer

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    keys = s3.keys(bucket)
    assert first not in keys
    assert len(keys) == 1


def test_a_failed_prune_is_reported_in_the_summary_and_the_webhook_body(
    s3: S3Server, bucket: str, backup_env: dict[str, str]
) -> None:
    from tests.support.faultproxy import FaultProxy, s3_error
    from tests.support.webhookserver import WebhookReceiver

    def refuse_deletes(request):
        is_batch = request.method == "POST" and "delete" in request.path.split("?", 1)[-1]
        if is_batch or request.method == "DELETE":
            return s3_error(403, "AccessDenied", "deletes refused by the test proxy")
        return None

    put(s3, bucket, f"nightly/second_{OLD}.sql.gz")
    with (
        FaultProxy(s3.endpoint, [refuse_deletes]) as proxy,
        WebhookReceiver() as receiver,
    ):
        backup_env.update(
            S3_ENDPOINT=proxy.endpoint,
            S3_EXPIRES_IN="1 day",
            PG_DATABASES="second",
            WEBHOOK_SUCCESS=receiver.url("/ok"),
            WEBHOOK_POST_LOGS="true",
        )
        result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr  # the backup itself succeeded
    assert "pruning expired backups failed: S3 refused to delete" in result.stdout
    [success] = receiver.received
    last_line = success.body.decode().rstrip("\n").splitlines()[-1]
    assert last_line.startswith("result: ok; pruning expired backups failed: S3 refused")
    assert f"nightly/second_{OLD}.sql.gz" in s3.keys(bucket)


@pytest.mark.parametrize("size", ["small", "streamed"])
def test_an_object_the_store_did_not_lock_fails_the_backup_and_is_removed(
    s3,
    proxy: FaultProxy,
    backup_env: dict[str, str],
    big_database: str,
    pausing_pg_dump: str,
    size: str,
) -> None:
    """A store that takes the upload but not its lock (here: the proxy drops the lock headers
    on their way to moto) would leave a deletable backup while the operator thinks it is
    locked."""
    proxy.drop_headers |= {"x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date"}
    bucket = s3.new_bucket(object_lock=True)
    env = {
        **backup_env,
        "S3_BUCKET": bucket,
        "S3_ENDPOINT": proxy.endpoint,
        "S3_GOVERNANCE": "1 day",
    }
    if size == "streamed":
        env.update(
            PG_DATABASES=big_database, PG_DUMP_PATH=pausing_pg_dump, BACKUP_COMPRESSION="none"
        )
    else:
        env["PG_DATABASES"] = "second"

    result = run_moonflower(env=env)

    assert result.returncode == 1
    assert "S3 did not lock" in result.stderr
    assert s3.keys(bucket) == []
