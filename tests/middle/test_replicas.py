"""A logical backup stored on the primary (moto) and on a replica on another S3 server
(SeaweedFS: its own signatures, credentials and checksums), in-process."""

import pytest

from moonflower.catalog.logical import Catalog
from moonflower.config.model import Config
from moonflower.logical.backup import BackupRun
from moonflower.storage.destination import destinations_of
from tests.middle.conftest import configured
from tests.support.replicas import replica_env
from tests.support.s3server import S3Server
from tests.support.seaweed import SeaweedServer


def run_with_replicas(config: Config) -> BackupRun:
    destinations = destinations_of(config)
    run = BackupRun(config, destinations[0])
    run.replicas = destinations[1:]
    return run


def test_a_backup_lands_on_both_with_the_same_checksum(
    backup_env: dict[str, str], s3: S3Server, seaweed: SeaweedServer
) -> None:
    far = seaweed.new_bucket()
    config = configured(backup_env, **replica_env(seaweed, far))
    report = run_with_replicas(config).run()
    assert report.ok, [result.error for result in report.failures]
    [result] = report.results
    assert result.copies == {"offsite": result.key.replace("nightly/", "far/", 1)}

    primary, replica = destinations_of(config)
    [here] = Catalog(primary.checked(), primary.config).backups()
    [there] = Catalog(replica.checked(), replica.config).backups()
    assert here.sha256 is not None
    assert there.sha256 == here.sha256
    assert there.size == here.size


@pytest.mark.parametrize("optional", [False, True])
def test_a_replica_that_refuses_fails_the_database_unless_optional(
    backup_env: dict[str, str], s3: S3Server, seaweed: SeaweedServer, optional: bool
) -> None:
    far = seaweed.new_bucket()
    settings = replica_env(seaweed, far)
    settings["REPLICA_OFFSITE_S3_SECRET_KEY"] = "not-the-secret"
    if optional:
        settings["REPLICA_OFFSITE_OPTIONAL"] = "on"
    config = configured(backup_env, **settings)
    report = run_with_replicas(config).run()
    [result] = report.results
    assert result.key is not None
    assert result.key in s3.keys(config.s3.bucket)  # the primary's copy stays
    assert seaweed.keys(far) == []
    assert report.ok is optional
    problem = (result.warnings if optional else [result.error or ""])[0]
    assert "not stored on the replica offsite" in problem
    assert "not-the-secret" not in problem
