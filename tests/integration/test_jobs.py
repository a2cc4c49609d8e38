"""BACKUP_JOBS: several databases at once, results kept apart and in order."""

import gzip
import re
from pathlib import Path

import pytest

from moonflower.catalog.keys import parse_key
from tests.support.pgserver import PgServer
from tests.support.runner import run_moonflower
from tests.support.s3server import S3Server
from tests.support.slowdump import interrupt_while_dumping, slow_dumps_running, use_slow_pg_dump

NAMES = [f"jobs_{number}" for number in range(6)]


@pytest.fixture(scope="module")
def job_databases(pg: PgServer) -> list[str]:
    for name in NAMES:
        pg.create_database(name)
        pg.psql(f"CREATE TABLE whoami (name text); INSERT INTO whoami VALUES ('{name}');", name)
    return NAMES


def test_parallel_backups_keep_their_results_apart(
    s3: S3Server, bucket: str, backup_env: dict[str, str], job_databases: list[str]
) -> None:
    backup_env.update(PG_DATABASES=" ".join(reversed(job_databases)), BACKUP_JOBS="3")

    result = run_moonflower(env=backup_env)

    assert result.returncode == 0, result.stderr
    keys = s3.keys(bucket)
    assert len(keys) == len(job_databases)
    for key in keys:
        backup = parse_key(key, "nightly")
        assert backup is not None, f"{key} is not named like a Moonflower backup"
        database = backup.database
        body = gzip.decompress(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())
        assert f"\n{database}\n".encode() in body, f"{key} holds another database's data"
    summary_order = re.findall(r"│ (jobs_\d)", result.stdout)
    assert summary_order == list(reversed(job_databases))
    for name in job_databases:
        assert f"[{name} / dump] dump complete" in result.stderr


def test_one_failure_among_parallel_backups(
    s3: S3Server, bucket: str, backup_env: dict[str, str], job_databases: list[str]
) -> None:
    backup_env.update(PG_DATABASES=" ".join([*job_databases[:3], "jobs_missing"]), BACKUP_JOBS="4")

    result = run_moonflower(env=backup_env)

    assert result.returncode == 1
    assert "backup failed for 1 database(s): jobs_missing" in result.stderr
    assert len(s3.keys(bucket)) == 3


def test_sigterm_stops_every_parallel_backup(
    s3: S3Server,
    bucket: str,
    backup_env: dict[str, str],
    spool_dir: Path,
    tmp_path: Path,
    job_databases: list[str],
) -> None:
    use_slow_pg_dump(backup_env, tmp_path)
    backup_env.update(PG_DATABASES=" ".join(job_databases[:3]), BACKUP_JOBS="3")
    result = interrupt_while_dumping(env=backup_env, spool_dir=spool_dir)

    assert result.returncode == 143, result.stderr
    assert list(spool_dir.iterdir()) == []
    assert s3.keys(bucket) == []
    assert slow_dumps_running() == []
