"""The core promises against a real S3 server (SeaweedFS) that, unlike moto, checks request
signatures and every checksum, and applies Object Lock to multipart uploads."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moonflower.config.loader import load_config
from moonflower.pitr.writer_lease import ArchiveHeld, Holder, LeaseLost, WriterLease
from tests.conftest import NASTY_DATABASE
from tests.support.faultproxy import FaultProxy, Reply, Request, backup_write
from tests.support.names import unique_name
from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower
from tests.support.seaweed import SeaweedServer
from tests.support.stock import load_gzip_dump

PASSPHRASE = "seaweed passphrase 'quoted' $x"


@pytest.fixture
def weed_env(pg: PgServer, seaweed: SeaweedServer, spool_dir: Path) -> dict[str, str]:
    bucket = seaweed.new_bucket()
    env = dict(pg.moonflower_env(NASTY_DATABASE))
    env.update(seaweed.moonflower_env(bucket, "nightly"))
    env["BACKUP_SPOOL_DIR"] = str(spool_dir)
    return env


def streamed_and_locked(
    env: dict[str, str], bucket: str, database: str, pg_dump: str
) -> dict[str, str]:
    """The big database, uncompressed and slowed so it is uploaded while dumping, into a
    bucket with Object Lock, locked for a day."""
    return {
        **env,
        "S3_BUCKET": bucket,
        "PG_DATABASES": database,
        "PG_DUMP_PATH": pg_dump,
        "BACKUP_COMPRESSION": "none",
        "S3_GOVERNANCE": "1 day",
    }


def test_round_trip_restores_with_stock_tools(
    pg: PgServer, seaweed: SeaweedServer, weed_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_moonflower(env=weed_env)

    assert result.returncode == 0, result.stderr
    [key] = seaweed.keys(weed_env["S3_BUCKET"])
    downloaded = tmp_path / "backup.sql.gz"
    seaweed.client().download_file(weed_env["S3_BUCKET"], key, str(downloaded))
    target = unique_name("weed_stock")
    load_gzip_dump(pg, downloaded, target)
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_encrypted_backup_restores_through_moonflower(
    pg: PgServer, weed_env: dict[str, str]
) -> None:
    env = {**weed_env, "ENCRYPTION_PASSPHRASE": PASSPHRASE}
    target = unique_name("weed_encrypted")

    backup = run_moonflower(env=env)
    restored = run_moonflower("restore", NASTY_DATABASE, "--into", target, env=env)

    assert backup.returncode == 0, backup.stderr
    assert restored.returncode == 0, restored.stderr
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_streamed_multipart_upload_is_locked_and_verified(
    pg: PgServer,
    seaweed: SeaweedServer,
    weed_env: dict[str, str],
    big_database: str,
    pausing_pg_dump: str,
) -> None:
    bucket = seaweed.new_bucket(object_lock=True)
    env = streamed_and_locked(weed_env, bucket, big_database, pausing_pg_dump)

    result = run_moonflower(env=env)

    assert result.returncode == 0, result.stderr
    assert "uploading while dumping" in result.stderr
    [key] = seaweed.keys(bucket)
    head = seaweed.client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC)
    assert "-" in head["ChecksumSHA256"], "a multipart object carries a composite checksum"
    target = unique_name("weed_streamed")
    restored = run_moonflower("restore", big_database, "--into", target, env=env)
    assert restored.returncode == 0, restored.stderr
    assert pg.dump_text(target) == pg.dump_text(big_database)


def test_a_wrong_secret_key_is_refused_and_nothing_is_written(
    seaweed: SeaweedServer, weed_env: dict[str, str]
) -> None:
    result = run_moonflower(env={**weed_env, "S3_SECRET_KEY": "not-the-secret"})

    assert result.returncode == 1
    assert "S3 refused the request" in result.stderr
    assert "not-the-secret" not in result.stderr
    assert seaweed.keys(weed_env["S3_BUCKET"]) == []


def test_prune_removes_every_version_in_a_versioned_bucket(
    seaweed: SeaweedServer, weed_env: dict[str, str]
) -> None:
    bucket = seaweed.new_bucket(object_lock=True)  # Object Lock buckets are versioned
    old = "nightly/second_2020-01-01T00:00:00.000Z.sql.gz"
    client = seaweed.client()
    for body in (b"\x1f\x8b first", b"\x1f\x8b second"):
        client.put_object(Bucket=bucket, Key=old, Body=body, ChecksumAlgorithm="SHA256")
    env = {**weed_env, "S3_BUCKET": bucket, "PG_DATABASES": "second", "S3_EXPIRES_IN": "1 day"}

    result = run_moonflower(env=env)

    assert result.returncode == 0, result.stderr
    listing = client.list_object_versions(Bucket=bucket, Prefix=old)
    left = listing.get("Versions", []) + listing.get("DeleteMarkers", [])
    assert [entry for entry in left if entry["Key"] == old] == []
    assert len(seaweed.keys(bucket)) == 1


def test_keep_rules_prune_every_version_and_skip_locked_ones(
    seaweed: SeaweedServer, weed_env: dict[str, str]
) -> None:
    """Keep rules on a versioned Object Lock bucket: what no rule keeps loses every version;
    a version still locked is skipped and reported; the kept ones are untouched."""
    bucket = seaweed.new_bucket(object_lock=True)
    client = seaweed.client()
    keys = [f"nightly/ghost_2021-0{month}-15T01:00:00.000Z.sql.gz" for month in range(1, 7)]
    for key in keys:
        for body in (b"\x1f\x8b first", b"\x1f\x8b second"):
            client.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")
    locked = keys[0]
    client.put_object(
        Bucket=bucket,
        Key=locked,
        Body=b"\x1f\x8b locked",
        ChecksumAlgorithm="SHA256",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=datetime(2099, 1, 1, tzinfo=UTC),
    )
    env = {**weed_env, "S3_BUCKET": bucket, "BACKUP_KEEP_MONTHLY": "3"}

    result = run_moonflower("prune", env=env)

    assert result.returncode == 0, result.stderr
    assert "is locked until" in result.stderr
    listing = client.list_object_versions(Bucket=bucket, Prefix="nightly/")
    versions: dict[str, int] = {}
    for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        versions[entry["Key"]] = versions.get(entry["Key"], 0) + 1
    assert versions == {keys[3]: 2, keys[4]: 2, keys[5]: 2, locked: 1}
    assert "locked, kept" in result.stdout


def test_a_changed_object_is_refused_before_the_target_is_touched(
    pg: PgServer, seaweed: SeaweedServer, weed_env: dict[str, str]
) -> None:
    env = {**weed_env, "PG_DATABASES": "second"}
    assert run_moonflower(env=env).returncode == 0
    bucket = env["S3_BUCKET"]
    [key] = seaweed.keys(bucket)
    client = seaweed.client()
    original = client.get_object(Bucket=bucket, Key=key)
    body = original["Body"].read()
    changed = body[:-8] + bytes(8)
    client.put_object(Bucket=bucket, Key=key, Body=changed, Metadata=original["Metadata"])
    assert hashlib.sha256(changed).hexdigest() != original["Metadata"]["sha256"]
    target = unique_name("weed_changed")

    result = run_moonflower("restore", "second", "--into", target, env=env)

    assert result.returncode == 1
    assert "does not match the SHA-256" in result.stderr
    assert pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'") == "0"


def test_lock_headers_and_part_checksums_travel_with_the_streamed_upload(
    seaweed: SeaweedServer, weed_env: dict[str, str], big_database: str, pausing_pg_dump: str
) -> None:
    """Seen on the wire through a proxy in front of SeaweedFS (which, unlike moto, also
    applies the lock): the lock is in the request that creates the upload, every part carries
    its checksum."""
    bucket = seaweed.new_bucket(object_lock=True)
    with FaultProxy(seaweed.endpoint) as proxy:
        env = streamed_and_locked(weed_env, bucket, big_database, pausing_pg_dump)
        result = run_moonflower(env={**env, "S3_ENDPOINT": proxy.endpoint})

    assert result.returncode == 0, result.stderr
    creates = [r for r in proxy.seen if r.method == "POST" and "uploads" in r.path]
    parts = [r for r in proxy.seen if r.method == "PUT" and "partNumber=" in r.path]
    assert len(creates) == 1
    lowered = {name.lower(): value for name, value in creates[0].headers.items()}
    assert lowered["x-amz-object-lock-mode"] == "GOVERNANCE"
    assert "x-amz-object-lock-retain-until-date" in lowered
    assert len(parts) >= 2
    assert all("x-amz-checksum-sha256" in {k.lower() for k in part.headers} for part in parts)


def test_a_streamed_upload_never_replaces_a_key_another_writer_took(
    seaweed: SeaweedServer, weed_env: dict[str, str], big_database: str, pausing_pg_dump: str
) -> None:
    """SeaweedFS honours If-None-Match on CompleteMultipartUpload: the rival that stored its
    object under the key first keeps it, even in a locked, versioned bucket."""
    bucket = seaweed.new_bucket(object_lock=True)
    rival = b"the other instance's backup"
    taken: list[str] = []

    def rival_first(request: Request) -> Reply | None:
        key = backup_write(request, bucket)
        if key is not None and not taken:
            seaweed.client().put_object(
                Bucket=bucket, Key=key, Body=rival, ChecksumAlgorithm="SHA256"
            )
            taken.append(key)
        return None

    with FaultProxy(seaweed.endpoint) as proxy:
        proxy.rules.append(rival_first)
        env = streamed_and_locked(weed_env, bucket, big_database, pausing_pg_dump)
        result = run_moonflower(env={**env, "S3_ENDPOINT": proxy.endpoint})

    assert taken, "the run never completed its upload"
    assert result.returncode == 1, result.stderr
    assert "not written by this run" in result.stderr
    client = seaweed.client()
    assert client.get_object(Bucket=bucket, Key=taken[0])["Body"].read() == rival
    versions = client.list_object_versions(Bucket=bucket, Prefix=taken[0]).get("Versions", [])
    assert len(versions) == 1
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_the_wal_archive_lease_is_decided_by_the_store(seaweed: SeaweedServer) -> None:
    """Issue 29, item 2, against a store that evaluates If-None-Match and If-Match itself:
    a second writer is refused, the holder renews, a writer whose lease was overwritten
    learns it at its next renewal, and a release leaves no lease."""
    env = {
        **seaweed.moonflower_env(seaweed.new_bucket(), "pitr"),
        "PG_HOST": "127.0.0.1",
        "PG_USER": "u",
        "PG_PASSWORD": "p",
        "PG_DATABASES": "app",
    }
    s3 = load_config(env).s3
    first = WriterLease(s3, Holder("first", "stream", "host-1", 11, "1", "t"), 1.0)
    second = WriterLease(s3, Holder("second", "stream", "host-2", 22, "2", "t"), 1.0)
    first.claim()
    with pytest.raises(ArchiveHeld, match="host-1"):
        second.claim()
    first.renew()
    taker = WriterLease(
        s3, Holder("second", "stream", "host-2", 22, "2", "t"), 1.0, gone=lambda holder: True
    )
    taker.claim()  # the takeover of a holder known to be dead: If-Match on its ETag
    with pytest.raises(LeaseLost, match="host-2"):
        first.renew()
    taker.release()
    assert first.look() is None
