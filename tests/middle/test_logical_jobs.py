"""A logical backup, its restore and its prune, each run in-process through a Destination."""

import pytest

from moonflower.catalog.logical import Catalog
from moonflower.config.model import Config
from moonflower.logical.backup import BackupRun
from moonflower.logical.restore import Restorer
from moonflower.retention.prune import Pruner
from moonflower.storage.destination import Destination
from tests.conftest import NASTY_DATABASE, SECOND_DATABASE
from tests.middle.conftest import configured
from tests.support.names import unique_name
from tests.support.pgserver import PgServer
from tests.support.s3server import S3Server
from tests.support.tamper import flip_a_middle_byte


def test_a_backup_run_stores_what_the_catalog_lists_and_the_restorer_loads(
    config: Config, destination: Destination, pg: PgServer
) -> None:
    report = BackupRun(config, destination).run()
    assert report.ok, report.error or [result.error for result in report.failures]
    [result] = report.results
    assert result.database == NASTY_DATABASE
    listed = Catalog(destination.storage(), config.s3).backups()
    assert [info.key for info in listed] == [result.key]
    assert listed[0].sha256 is not None  # what a restore checks the download against

    target = unique_name("middle_restore")
    Restorer(config, destination.checked()).restore(NASTY_DATABASE, target, None, False)
    assert pg.dump_text(target) == pg.dump_text(NASTY_DATABASE)


def test_a_destination_whose_bucket_is_missing_fails_the_run_naming_it(
    backup_env: dict[str, str], s3: S3Server
) -> None:
    config = configured(backup_env, S3_BUCKET="mf-test-no-such-bucket")
    report = BackupRun(config, Destination(config.s3)).run()
    assert not report.ok
    assert "mf-test-no-such-bucket" in (report.error or "")


def test_the_prune_hook_gets_only_the_databases_just_backed_up(
    backup_env: dict[str, str],
) -> None:
    config = configured(
        backup_env, PG_DATABASES=f"{NASTY_DATABASE} {SECOND_DATABASE}", S3_EXPIRES_IN="1 day"
    )
    asked: list[list[str]] = []
    report = BackupRun(
        config,
        Destination(config.s3),
        prune_expired=lambda destination, databases, report: asked.append(sorted(databases)),
    ).run()
    assert report.ok
    assert asked == [sorted([NASTY_DATABASE, SECOND_DATABASE])]


def test_the_pruner_keeps_the_newest_and_deletes_the_rest_only_when_forced_past_its_limit(
    backup_env: dict[str, str], s3: S3Server
) -> None:
    config = configured(backup_env, PG_DATABASES=SECOND_DATABASE, BACKUP_KEEP_LAST="1")
    destination = Destination(config.s3)
    for _ in range(3):
        assert BackupRun(config, destination).run().ok
    keys = sorted(s3.keys(config.s3.bucket))
    assert len(keys) == 3

    shown = Pruner(destination.checked(), config.s3).prune(dry_run=True)
    assert sorted(s3.keys(config.s3.bucket)) == keys  # a dry run deletes nothing
    assert {decision.key for decision in shown.decisions if not decision.keep} == set(keys[:2])

    refused = Pruner(destination.checked(), config.s3).prune()
    assert "BACKUP_PRUNE_MAX_DELETE" in " ".join(refused.problems)  # 2 of 3 is too many
    assert sorted(s3.keys(config.s3.bucket)) == keys

    report = Pruner(destination.checked(), config.s3).prune(force=True)
    assert report.problems == []
    assert s3.keys(config.s3.bucket) == [keys[-1]]


def test_the_restorer_refuses_a_changed_backup_before_touching_the_target(
    config: Config, destination: Destination, pg: PgServer, s3: S3Server
) -> None:
    report = BackupRun(config, destination).run()
    assert report.ok
    key = report.results[0].key
    assert key is not None
    flip_a_middle_byte(s3.client(), config.s3.bucket, key)

    target = unique_name("middle_refused")
    with pytest.raises(Exception, match="does not match the SHA-256"):
        Restorer(config, destination.checked()).restore(NASTY_DATABASE, target, None, False)
    assert target not in pg.psql("SELECT datname FROM pg_database")
