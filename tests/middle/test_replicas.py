"""A logical backup stored on the primary (moto) and on a replica on another S3 server
(SeaweedFS: its own signatures, credentials and checksums), in-process."""

from datetime import datetime, timedelta

import pytest

from moonflower.catalog.logical import Catalog
from moonflower.config.model import Config
from moonflower.logical.backup import BackupRun
from moonflower.storage.destination import destinations_of
from tests.middle.conftest import configured
from tests.support.replicas import replica_env, stored_facts
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


def test_a_backup_and_the_globals_land_on_both_with_their_own_lock_dates(
    backup_env: dict[str, str], s3: S3Server, seaweed: SeaweedServer
) -> None:
    here_bucket = s3.new_bucket(object_lock=True)
    far = seaweed.new_bucket(object_lock=True)
    config = configured(
        backup_env,
        **replica_env(seaweed, far),
        S3_BUCKET=here_bucket,
        PG_GLOBALS="on",
        S3_GOVERNANCE="1 day",
        REPLICA_OFFSITE_S3_GOVERNANCE="3 days",
    )
    report = run_with_replicas(config).run()
    assert report.ok, [result.error for result in report.failures]
    assert len(report.results) == 2  # the database and the globals
    for result in report.results:
        assert result.key is not None
        there_key = result.copies["offsite"]
        here, there = (
            stored_facts(s3, here_bucket, result.key),
            stored_facts(seaweed, far, there_key),
        )
        assert here["sha256"] == there["sha256"]
        assert isinstance(here["retain"], datetime)
        assert isinstance(there["retain"], datetime)
        assert there["retain"] - here["retain"] > timedelta(days=1, hours=23)
