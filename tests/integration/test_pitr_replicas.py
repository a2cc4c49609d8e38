"""Point-in-time recovery on two destinations, end to end: `moonflower run` streams the WAL
and `moonflower basebackup` stores a base backup on the primary (moto) and on a replica on
SeaweedFS (its own signatures, credentials and Object Lock); with the primary unreachable,
`restore-cluster --latest` recovers from the replica and says so."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum

from tests.support.pgserver import PgServer
from tests.support.pitr import Streaming, commit_rows, commit_times, pitr_env, restored_rows
from tests.support.replicas import replica_env, stored_facts
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.seaweed import SeaweedServer
from tests.support.waiting import eventually

UNREACHABLE = {"S3_ENDPOINT": "http://127.0.0.1:9", "S3_MAX_ATTEMPTS": "1"}


def wal_after(server: S3Server, bucket: str, prefix: str, moment: pendulum.DateTime) -> bool:
    listing = server.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/wal/")
    return any(
        pendulum.instance(item["LastModified"]) > moment for item in listing.get("Contents", [])
    )


def test_base_backup_and_wal_on_both_and_restore_cluster_from_the_replica(
    source: PgServer,
    s3: S3Server,
    seaweed: SeaweedServer,
    tmp_path: Path,
    restore_dir: Path,
) -> None:
    bucket = s3.new_bucket(object_lock=True)
    far = seaweed.new_bucket(object_lock=True)
    env = {
        **pitr_env(source, s3, bucket, tmp_path, ENCRYPTION_PASSPHRASE="two places"),
        **replica_env(seaweed, far),
        "S3_GOVERNANCE": "1 day",
        "REPLICA_OFFSITE_S3_GOVERNANCE": "3 days",
    }
    streaming = Streaming(env, tmp_path / "run.log")
    try:
        streaming.wait_started()
        commit_rows(source, 0, 3)
        backup = run_moonflower("basebackup", env=env)
        assert backup.returncode == 0, backup.stderr
        assert "stored on offsite too" in backup.stderr
        commit_rows(source, 3, 10)
        times = commit_times(source)
        last = times[-1][1].add(seconds=1)
        assert eventually(lambda: wal_after(seaweed, far, "far", last), 60), streaming.text()
        assert eventually(lambda: wal_after(s3, bucket, "pitr", last), 60), streaming.text()
    finally:
        assert streaming.stop() == 0, streaming.text()

    [tar_here] = [key for key in s3.keys(bucket) if "/base/" in key and "base.tar" in key]
    tar_there = tar_here.replace("pitr/", "far/", 1)
    assert tar_there in seaweed.keys(far)
    here, there = stored_facts(s3, bucket, tar_here), stored_facts(seaweed, far, tar_there)
    assert here["sha256"] == there["sha256"]
    assert isinstance(here["retain"], datetime)
    assert isinstance(there["retain"], datetime)
    assert there["retain"] - here["retain"] > timedelta(days=1, hours=23)
    assert there["retain"] > datetime.now(UTC) + timedelta(days=2, hours=23)
    segments_here = {key.split("/")[-1] for key in s3.keys(bucket) if "/wal/" in key}
    segments_there = {key.split("/")[-1] for key in seaweed.keys(far) if "/wal/" in key}
    complete = {name for name in segments_here if ".partial" not in name}
    assert complete
    assert complete <= segments_there

    down = {**env, **UNREACHABLE}
    restore = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--start", env=down
    )
    assert restore.returncode == 0, restore.stderr
    assert "restore-cluster from primary failed" in restore.stderr
    assert "trying offsite" in restore.stderr
    assert restored_rows(restore_dir, source.password) == [n for n, _ in times]


def test_restore_cluster_from_names_one_destination_and_never_falls_back(
    source: PgServer, s3: S3Server, seaweed: SeaweedServer, tmp_path: Path, restore_dir: Path
) -> None:
    bucket = s3.new_bucket()
    far = seaweed.new_bucket()
    env = {
        **pitr_env(source, s3, bucket, tmp_path, WAL_STREAM="off"),
        **replica_env(seaweed, far),
    }
    assert run_moonflower("basebackup", env=env).returncode == 0
    down = {**env, **UNREACHABLE}
    refused = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--from", "primary", env=down
    )
    assert refused.returncode != 0
    assert "trying offsite" not in refused.stderr
    assert not any(restore_dir.iterdir())
    unknown = run_moonflower(
        "restore-cluster", "--to", str(restore_dir), "--latest", "--from", "elsewhere", env=env
    )
    assert unknown.returncode == 2
    assert '--from: "elsewhere" is not a destination' in unknown.stderr
