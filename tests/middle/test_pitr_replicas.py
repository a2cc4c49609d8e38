"""Point-in-time recovery on several destinations: WAL (complete and partial) and base
backups pushed to the primary (moto) and a replica on SeaweedFS (its own signatures,
credentials and Object Lock), and fetched from the replica when the primary cannot serve."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moonflower.catalog.physical import base_backups, wal_archive
from moonflower.config.model import Config
from moonflower.core.errors import StorageError
from moonflower.core.state_dir import state_directory
from moonflower.pitr.basebackup import take_base_backup
from moonflower.pitr.recovery_target import RecoveryTarget
from moonflower.pitr.replica_sync import sync_physical
from moonflower.pitr.restore_cluster import ClusterRestore
from moonflower.pitr.wal_archive import CONTENT_SHA256, WalArchive
from moonflower.proc.gpg import Decryption
from moonflower.storage.destination import Destination, destinations_of
from moonflower.storage.objects import SHA256_METADATA_KEY
from moonflower.storage.replication import ReplicaFailed
from moonflower.storage.store_record import last_stores
from tests.middle.conftest import configured
from tests.support.replicas import replica_env, stored_facts
from tests.support.s3server import S3Server
from tests.support.seaweed import SeaweedServer
from tests.support.tamper import flip_a_middle_byte

LOCKED = {"S3_GOVERNANCE": "1 day", "REPLICA_OFFSITE_S3_GOVERNANCE": "3 days"}


def two_places(
    backup_env: dict[str, str], seaweed: SeaweedServer, far: str, **settings: str
) -> tuple[Config, list[Destination]]:
    config = configured(backup_env, **{**replica_env(seaweed, far), **settings})
    return config, destinations_of(config)


def test_a_segment_lands_on_both_with_the_same_checksum_and_its_own_lock(
    backup_env: dict[str, str],
    s3: S3Server,
    seaweed: SeaweedServer,
    wal_segment: Path,
) -> None:
    far = seaweed.new_bucket(object_lock=True)
    primary_bucket = s3.new_bucket(object_lock=True)
    config, destinations = two_places(backup_env, seaweed, far, S3_BUCKET=primary_bucket, **LOCKED)
    archive = WalArchive(config, destinations[0], None, replicas=destinations[1:])
    assert archive.push(wal_segment)

    [here] = [key for key in s3.keys(primary_bucket) if wal_segment.name in key]
    [there] = [key for key in seaweed.keys(far) if wal_segment.name in key]
    assert there == here.replace("nightly/", "far/", 1)
    mine, theirs = stored_facts(s3, primary_bucket, here), stored_facts(seaweed, far, there)
    assert mine[CONTENT_SHA256] == theirs[CONTENT_SHA256]
    assert mine[SHA256_METADATA_KEY] == theirs[SHA256_METADATA_KEY]
    assert isinstance(mine["retain"], datetime)
    assert isinstance(theirs["retain"], datetime)
    now = datetime.now(UTC)
    assert mine["retain"] - now < timedelta(days=1, minutes=5)
    assert theirs["retain"] - now > timedelta(days=2, hours=23)
    assert last_stores(state_directory(config.backup))["offsite"]["ok"] is True


@pytest.mark.parametrize("optional", [False, True])
def test_a_replica_that_refuses_a_segment_fails_the_push_unless_optional(
    backup_env: dict[str, str],
    s3: S3Server,
    seaweed: SeaweedServer,
    wal_segment: Path,
    optional: bool,
) -> None:
    far = seaweed.new_bucket()
    settings = {"REPLICA_OFFSITE_S3_SECRET_KEY": "not-the-secret"}
    if optional:
        settings["REPLICA_OFFSITE_OPTIONAL"] = "on"
    config, destinations = two_places(backup_env, seaweed, far, **settings)
    archive = WalArchive(config, destinations[0], None, replicas=destinations[1:])
    if optional:
        assert archive.push(wal_segment)
    else:
        with pytest.raises(ReplicaFailed, match="not stored on the replica offsite"):
            archive.push(wal_segment)
    assert [key for key in s3.keys(config.s3.bucket) if wal_segment.name in key]
    assert seaweed.keys(far) == []
    record = last_stores(state_directory(config.backup))["offsite"]
    assert record["ok"] is False
    assert record["optional"] is optional
    assert "not-the-secret" not in str(record)

    # the replica fixed: the retry (archive_command's, or the stream's) completes it, and
    # the primary's copy is not written again
    fixed, destinations = two_places(backup_env, seaweed, far)
    before = s3.keys(config.s3.bucket)
    retry = WalArchive(fixed, destinations[0], None, replicas=destinations[1:])
    assert not retry.push(wal_segment)
    assert s3.keys(config.s3.bucket) == before
    assert [key for key in seaweed.keys(far) if wal_segment.name in key]


def test_partial_segments_go_to_both_and_the_superseded_one_leaves_both(
    backup_env: dict[str, str], s3: S3Server, seaweed: SeaweedServer, wal_segment: Path
) -> None:
    far = seaweed.new_bucket()
    config, destinations = two_places(backup_env, seaweed, far)
    archive = WalArchive(config, destinations[0], None, replicas=destinations[1:])
    partial = wal_segment.with_name(wal_segment.name + ".partial")
    wal_segment.rename(partial)
    assert archive.push_partial(partial)
    assert not archive.push_partial(partial)  # unchanged: nothing to push anywhere
    with partial.open("r+b") as handle:
        handle.seek(8192)
        handle.write(b"\x01" * 64)
    assert archive.push_partial(partial)

    def partials(keys: list[str]) -> list[str]:
        return [key for key in keys if ".partial" in key]

    assert len(partials(s3.keys(config.s3.bucket))) == 1
    assert len(partials(seaweed.keys(far))) == 1
    [there] = wal_archive(destinations[1].storage(), destinations[1].prefix)
    assert there.item.partial


def test_a_segment_missing_or_damaged_on_the_primary_is_fetched_from_the_replica(
    backup_env: dict[str, str],
    s3: S3Server,
    seaweed: SeaweedServer,
    wal_segment: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    far = seaweed.new_bucket()
    config, destinations = two_places(backup_env, seaweed, far)
    WalArchive(config, destinations[0], None, replicas=destinations[1:]).push(wal_segment)
    [key] = [key for key in s3.keys(config.s3.bucket) if wal_segment.name in key]
    flip_a_middle_byte(s3.client(), config.s3.bucket, key)

    reader = WalArchive(config, destinations[0], None, fallbacks=destinations[1:])
    alone = WalArchive(config, destinations[0], None)
    with Decryption.open(config.encryption, config.backup.spool_dir) as decryption:
        assert reader.fetch(wal_segment.name, tmp_path / "damaged", decryption)
        assert (tmp_path / "damaged").read_bytes() == wal_segment.read_bytes()
        assert "fetched from offsite (fallback)" in caplog.text
        assert "SHA-256" in caplog.text  # the reason is logged

        s3.client().delete_object(Bucket=config.s3.bucket, Key=key)
        assert not alone.fetch(wal_segment.name, tmp_path / "alone", decryption)
        assert reader.fetch(wal_segment.name, tmp_path / "missing", decryption)
        assert (tmp_path / "missing").read_bytes() == wal_segment.read_bytes()
        assert not reader.fetch("0000000100000000000000FF", tmp_path / "nowhere", decryption)


def test_a_segment_is_not_called_missing_when_a_destination_could_not_be_asked(
    backup_env: dict[str, str], seaweed: SeaweedServer, wal_segment: Path, tmp_path: Path
) -> None:
    far = seaweed.new_bucket()
    config, destinations = two_places(
        backup_env, seaweed, far, S3_ENDPOINT="http://127.0.0.1:9", S3_MAX_ATTEMPTS="1"
    )
    reader = WalArchive(config, destinations[0], None, fallbacks=destinations[1:])
    with (
        Decryption.open(config.encryption, config.backup.spool_dir) as decryption,
        pytest.raises(StorageError),
    ):
        reader.fetch(wal_segment.name, tmp_path / "unknown", decryption)


def test_a_base_backup_lands_on_both_and_restores_from_the_replica(
    backup_env: dict[str, str], s3: S3Server, seaweed: SeaweedServer, tmp_path: Path
) -> None:
    far = seaweed.new_bucket()
    config, destinations = two_places(backup_env, seaweed, far, BASEBACKUP_INCREMENTAL="on")
    record = take_base_backup(config, destinations[0], None, replicas=destinations[1:])
    [here] = base_backups(destinations[0].storage(), destinations[0].prefix)
    [there] = base_backups(destinations[1].storage(), destinations[1].prefix)
    assert here.key == record.key
    assert there.key == record.key.replace("nightly/", "far/", 1)
    assert there.manifest_key == (record.manifest_key or "").replace("nightly/", "far/", 1)
    assert there.manifest_key in seaweed.keys(far)
    assert there.sha256 == here.sha256
    assert there.manifest_sha256 == here.manifest_sha256

    for key in s3.keys(config.s3.bucket):
        s3.client().delete_object(Bucket=config.s3.bucket, Key=key)
    directory = tmp_path / "restored"
    restore = ClusterRestore(config, destinations[1], directory, RecoveryTarget())
    prepared = restore.prepare(fetch_wal=False)
    assert prepared.base.label == record.label
    assert (directory / "PG_VERSION").is_file()


def test_a_required_replica_that_refuses_a_base_backup_fails_it_after_the_primary_has_it(
    backup_env: dict[str, str], seaweed: SeaweedServer
) -> None:
    far = seaweed.new_bucket()
    config, destinations = two_places(
        backup_env, seaweed, far, REPLICA_OFFSITE_S3_SECRET_KEY="not-the-secret"
    )
    with pytest.raises(ReplicaFailed, match=r"base backup .* not stored on the replica offsite"):
        take_base_backup(config, destinations[0], None, replicas=destinations[1:])
    [kept] = base_backups(destinations[0].storage(), destinations[0].prefix)
    assert kept.sha256
    assert seaweed.keys(far) == []


def test_sync_copies_base_backups_and_wal_a_replica_lacks_and_nothing_damaged_or_planted(
    backup_env: dict[str, str],
    s3: S3Server,
    seaweed: SeaweedServer,
    wal_segment: Path,
    tmp_path: Path,
) -> None:
    far = seaweed.new_bucket()
    config, destinations = two_places(
        backup_env,
        seaweed,
        far,
        BASEBACKUP_INCREMENTAL="on",
        REPLICA_OFFSITE_S3_SECRET_KEY="not-the-secret",
        REPLICA_OFFSITE_OPTIONAL="on",
    )
    record = take_base_backup(config, destinations[0], None, replicas=destinations[1:])
    archive = WalArchive(config, destinations[0], None, replicas=destinations[1:])
    assert archive.push(wal_segment)
    second = wal_segment.with_name("000000010000000000000099")
    second.write_bytes(wal_segment.read_bytes())
    assert archive.push(second)
    [damaged] = [key for key in s3.keys(config.s3.bucket) if second.name in key]
    flip_a_middle_byte(s3.client(), config.s3.bucket, damaged)
    planted = f"{config.s3.prefix}/wal/000000010000000000000098.zst"
    s3.client().put_object(Bucket=config.s3.bucket, Key=planted, Body=b"not ours")
    assert seaweed.keys(far) == []

    fixed, destinations = two_places(backup_env, seaweed, far, BASEBACKUP_INCREMENTAL="on")
    planned = sync_physical(fixed, destinations, destinations[1:], dry_run=True)
    assert len(planned) == 4
    assert seaweed.keys(far) == []

    copies = {
        copy.key: copy.result
        for copy in sync_physical(fixed, destinations, destinations[1:], False)
    }
    assert copies[record.key.replace("nightly/", "far/", 1)] == "copied from primary"
    assert "does not match the SHA-256" in copies[damaged.replace("nightly/", "far/", 1)]
    assert "not written by Moonflower" in copies[planted.replace("nightly/", "far/", 1)]
    [there] = base_backups(destinations[1].storage(), destinations[1].prefix)
    assert there.sha256 == record.sha256
    assert there.manifest_key in seaweed.keys(far)
    with Decryption.open(fixed.encryption, fixed.backup.spool_dir) as decryption:
        replica_alone = WalArchive(fixed, destinations[1], None)
        assert replica_alone.fetch(wal_segment.name, tmp_path / "synced", decryption)
    assert (tmp_path / "synced").read_bytes() == wal_segment.read_bytes()

    held = seaweed.keys(far)
    again = sync_physical(fixed, destinations, destinations[1:], False)
    assert all(copy.result.startswith("failed") for copy in again)
    assert seaweed.keys(far) == held
