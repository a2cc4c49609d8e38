"""The WAL archive, a base backup and the preparation of a cluster restore, each run
in-process through a Destination."""

from pathlib import Path

import pytest

from moonflower.catalog.physical import base_backups
from moonflower.config.model import Config
from moonflower.core.errors import RestoreError
from moonflower.core.exit_status import ExitStatus
from moonflower.core.state_dir import state_directory
from moonflower.jobs.base_backup import base_backup
from moonflower.pitr.basebackup import take_base_backup
from moonflower.pitr.recovery_target import RecoveryTarget
from moonflower.pitr.restore_cluster import ClusterRestore
from moonflower.pitr.wal_archive import WalArchive
from moonflower.proc.gpg import Decryption
from moonflower.reporting.health import health
from moonflower.reporting.status_file import StateFile
from moonflower.storage.destination import Destination
from tests.middle.conftest import configured
from tests.support.s3server import S3Server
from tests.support.tamper import flip_a_middle_byte


def test_a_pushed_segment_comes_back_byte_for_byte(
    config: Config, destination: Destination, wal_segment: Path, tmp_path: Path
) -> None:
    archive = WalArchive(config, destination, None)
    assert archive.push(wal_segment)
    assert not archive.push(wal_segment)  # the same content again: already archived
    target = tmp_path / "fetched"
    with Decryption.open(config.encryption, config.backup.spool_dir) as decryption:
        assert archive.fetch(wal_segment.name, target, decryption)
        assert target.read_bytes() == wal_segment.read_bytes()
        assert not archive.fetch("0000000100000000000000FF", tmp_path / "missing", decryption)


def test_a_changed_segment_is_refused_and_nothing_is_written(
    config: Config, destination: Destination, wal_segment: Path, tmp_path: Path, s3: S3Server
) -> None:
    archive = WalArchive(config, destination, None)
    archive.push(wal_segment)
    [key] = [key for key in s3.keys(config.s3.bucket) if wal_segment.name in key]
    flip_a_middle_byte(s3.client(), config.s3.bucket, key)

    target = tmp_path / "fetched"
    with (
        Decryption.open(config.encryption, config.backup.spool_dir) as decryption,
        pytest.raises(RestoreError, match="does not match the SHA-256"),
    ):
        archive.fetch(wal_segment.name, target, decryption)
    assert not target.exists()
    assert list(tmp_path.glob(".fetched*")) == []


def test_a_base_backup_is_described_and_chosen_for_a_restore(
    config: Config, destination: Destination, tmp_path: Path
) -> None:
    record = take_base_backup(config, destination, None)
    [found] = base_backups(destination.storage(), config.s3.prefix)
    assert found.key == record.key
    assert found.sha256 == record.sha256

    directory = tmp_path / "restored"
    prepared = ClusterRestore(config, destination, directory, RecoveryTarget()).prepare(
        fetch_wal=False
    )
    assert prepared.base.label == record.label
    assert (directory / "PG_VERSION").is_file()
    assert (directory / "backup_label").is_file()


def test_a_refused_prune_after_a_base_backup_is_reported_as_a_failed_prune_job(
    backup_env: dict[str, str],
) -> None:
    config = configured(backup_env, BACKUP_KEEP_LAST="1", BACKUP_PRUNE_MAX_DELETE="0")
    destination = Destination(config.s3)
    assert base_backup(config, [destination]) == ExitStatus.OK
    assert base_backup(config, [destination]) == ExitStatus.OK  # stored, though not pruned

    assert len(base_backups(destination.storage(), config.s3.prefix)) == 2
    jobs = StateFile(state_directory(config.backup)).read()["jobs"]
    assert jobs["basebackup"]["last_ok"] is True
    assert jobs["prune"]["last_ok"] is False
    assert "BACKUP_PRUNE_MAX_DELETE" in jobs["prune"]["last_error"]
    verdict = health(StateFile(state_directory(config.backup)).read(), None)
    assert not verdict.ok
    assert "prune" in verdict.reason
